"""Everything that lives in the database: schema and migrations, SQLite and PostgreSQL
engines, the ledger's reads and writes (exactly once per incident, step and customer), bulk
COPY, background jobs, erasure, and drafts and versions of offer tables and message books.
"""

from offers.ledger.bulk import bulk_insert
from offers.ledger.db import Read, create_engine, sqlite_url, upgrade
from offers.ledger.erasure import erase_customer, export_customer, pseudonymous_path
from offers.ledger.followups import (
    FOLLOWUP_LIST,
    FeedPosition,
    feed_position,
    paired,
    with_followup_lists,
)
from offers.ledger.frames import DECISION_SCHEMA
from offers.ledger.live import (
    LiveVersion,
    live_segment_names,
    live_versions,
    published_table,
    published_table_body,
)
from offers.ledger.message_versions import (
    BookPublished,
    BookRefused,
    BookSummary,
    BookVersion,
    MessageStore,
    live_books,
    live_stamp,
    publish_book,
    publish_shipped_books,
    wording_books,
)
from offers.ledger.recent import (
    STATUSES,
    IncidentFilter,
    IncidentLine,
    incident_lines_frame,
    recent_incidents,
)
from offers.ledger.store import Ledger
from offers.ledger.transaction import Tx
from offers.ledger.versions import (
    Draft,
    NotFound,
    Published,
    PublishRefused,
    Ref,
    Store,
    TableSummary,
    VersionInfo,
    publish_table,
)

__all__ = [
    "DECISION_SCHEMA",
    "FOLLOWUP_LIST",
    "STATUSES",
    "BookPublished",
    "BookRefused",
    "BookSummary",
    "BookVersion",
    "Draft",
    "FeedPosition",
    "IncidentFilter",
    "IncidentLine",
    "Ledger",
    "LiveVersion",
    "MessageStore",
    "NotFound",
    "PublishRefused",
    "Published",
    "Read",
    "Ref",
    "Store",
    "TableSummary",
    "Tx",
    "VersionInfo",
    "bulk_insert",
    "create_engine",
    "erase_customer",
    "export_customer",
    "feed_position",
    "incident_lines_frame",
    "live_books",
    "live_segment_names",
    "live_stamp",
    "live_versions",
    "paired",
    "pseudonymous_path",
    "publish_book",
    "publish_shipped_books",
    "publish_table",
    "published_table",
    "published_table_body",
    "recent_incidents",
    "sqlite_url",
    "upgrade",
    "with_followup_lists",
    "wording_books",
]
