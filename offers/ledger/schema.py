"""The database schema (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Alembic migrations in `offers/ledger/migrations` create exactly these tables; a test keeps the two
in step.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("incident_id", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("facts", sa.JSON, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("budget", sa.Float),
    #: How many customers the incident affects: those in incident_customers and those
    #: with a decision in it (migration 0012), counted as they join, under its lock.
    sa.Column("customers", sa.Integer, nullable=False, server_default="0"),
)

#: Customers named for an incident while nobody was decided (its delay below notice). All
#: others affected are found by their decisions in it, so a million-customer step does not
#: write its customers a second time (migration 0012; rows written before stay).
incident_customers = sa.Table(
    "incident_customers",
    metadata,
    sa.Column("incident_id", sa.String(128), primary_key=True),
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sqlite_with_rowid=False,  # the key is the whole row: one B-tree, not two
)

#: One row per (incident, step, customer): the ledger's exactly-once key.
decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("incident_id", sa.String(128), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("segment", sa.String(64)),
    sa.Column("segment_description", sa.String(256)),
    sa.Column("message_kind", sa.String(16), nullable=False),
    sa.Column("channel", sa.String(16)),
    sa.Column("language", sa.String(16), nullable=False),
    # Rows written before migration 0013 only: since, the text is the wording's shell with
    # the row's perk code and `first_name` spliced in (see offers.ledger.wording.with_words).
    sa.Column("text", sa.Text),
    sa.Column("rule_id", sa.String(64)),
    sa.Column("perk_id", sa.String(64)),
    sa.Column("perk_title", sa.String(256)),
    sa.Column("perk_value", sa.Float),
    sa.Column("perk_cost", sa.Float),
    sa.Column("currency", sa.String(3)),
    sa.Column("perk_code", sa.String(32)),
    sa.Column("valid_until", sa.Date),
    sa.Column("propensity", sa.Float, nullable=False),
    # Written by the first ledger versions only; now in decision_reasons under reason_id.
    # So are segment_description, perk_title, perk_value, currency and valid_until above
    # (rows written before migration 0010 keep their own).
    sa.Column("reasons", sa.Text),
    sa.Column("charged_cost", sa.Float),
    sa.Column("replaces", sa.String(64)),
    sa.Column("holdout", sa.Boolean),
    sa.Column("needs_human", sa.Boolean),
    sa.Column("entitlements", sa.Text),  # as reasons: older rows only
    sa.Column("airport", sa.String(3)),  # where a stocked perk is counted
    sa.Column("reason_id", sa.BigInteger),  # -> decision_reasons
    # Follow-ups scheduled with this decision (an apology): the first (`followup_kind` at
    # `followup_at`) and the one after it, if any (`then_kind` at `then_at`, never
    # earlier), sent on the decision's channel in its language. On the decision's own row
    # (migration 0011), a million-customer step writes no second table and key index.
    sa.Column("followup_kind", sa.String(32)),
    sa.Column("followup_at", sa.DateTime(timezone=True)),
    sa.Column("then_kind", sa.String(32)),
    sa.Column("then_at", sa.DateTime(timezone=True)),
    sa.Column("first_name", sa.Text),  # where the text has the name; see `text`
)
sa.Index("ix_decisions_customer", decisions.c.customer_id, decisions.c.created_at)
#: Perks given per airport and day, as stock is counted (migration 0019): without it every
#: update and preview at an airport with stocked perks read the whole ledger.
sa.Index(
    "ix_decisions_stock",
    decisions.c.airport,
    decisions.c.created_at,
    postgresql_where=decisions.c.perk_id.is_not(None),
    sqlite_where=decisions.c.perk_id.is_not(None),
)
#: Follow-ups by due time; only rows that have one are in it.
sa.Index(
    "ix_decisions_followup_due",
    decisions.c.followup_at,
    postgresql_where=decisions.c.followup_at.is_not(None),
    sqlite_where=decisions.c.followup_at.is_not(None),
)

#: The words of a decision (reasons and entitlements, JSON lists) and the columns that go
#: with them (segment description, perk title, value, currency, validity, the message text
#: with marks where the name and perk code go), stored once per distinct wording in an
#: incident: a million decisions share a few hundred of them, and their rows in
#: `decisions` are narrower by the same columns.
decision_reasons = sa.Table(
    "decision_reasons",
    metadata,
    sa.Column("incident_id", sa.String(128), primary_key=True),
    sa.Column("reason_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("entitlements", sa.Text),
    sa.Column("segment_description", sa.String(256)),
    sa.Column("perk_title", sa.String(256)),
    sa.Column("perk_value", sa.Float),
    sa.Column("currency", sa.String(3)),
    sa.Column("valid_until", sa.Date),
    sa.Column("text_shell", sa.Text),  # null: no message
    # Which published message book the text came from, `<book> v<N>` (migration 0018; null
    # before, or when the wording came from a book read from a file).
    sa.Column("message_book", sa.String(80)),
)

#: Background work (large incidents): status and progress any worker can report.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("progress", sa.Float, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("result", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # Since migration 0015: what the job needs to run again elsewhere (cleared once it ends),
    # who runs it now, when that worker last said it is alive, and how many have started it.
    # A queued or running job whose heartbeat is older than the lease is taken over.
    sa.Column("input", sa.LargeBinary),
    sa.Column("owner", sa.String(128)),
    sa.Column("heartbeat", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
)

#: Token buckets of rate limits shared by every host on one PostgreSQL (migration 0015): a
#: bucket's tokens at `at` (seconds by the database's clock) and whether the last take got
#: one. Rows of buckets full again are deleted now and then; a missing row is a full bucket.
#: Unlogged on PostgreSQL (migration 0015): a take need not wait for a WAL flush.
rate_buckets = sa.Table(
    "rate_buckets",
    metadata,
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("subject", sa.String(128), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("granted", sa.Boolean, nullable=False),
)

#: Idempotency-Keys, each caller's own (`scope`: the API key's id), with a digest of the
#: request body: claimed by the request doing the work (`claim`, no response yet), then
#: holding its response (migration 0014; see offers.ledger.idempotency).
idempotency = sa.Table(
    "idempotency",
    metadata,
    sa.Column("scope", sa.String(16), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("body_digest", sa.String(64), nullable=False),
    sa.Column("claim", sa.String(32)),
    sa.Column("status_code", sa.Integer),
    sa.Column("response", sa.LargeBinary),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

#: Offer-table versions as marketing published them (TOML text, the canonical form).
#: What a table published before tables named their incident kinds serves.
FLIGHT_INCIDENTS = "flight_delay,cancellation,missed_connection"

offer_tables = sa.Table(
    "offer_tables",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_by", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    # Publication order across all names; the live table is the highest. Not published_at:
    # that is the publisher's clock, and a clock running behind would hide a rollback.
    sa.Column("seq", sa.Integer, nullable=False),
    # The incident kinds the version serves, comma-separated (the body's `incidents`): each
    # kind is served by the newest published table that lists it.
    sa.Column("incidents", sa.String(200), nullable=False, server_default=FLIGHT_INCIDENTS),
    sa.UniqueConstraint("seq", name="uq_offer_tables_seq"),
)

#: Offer-table drafts: marketing's work in progress, one per table name, not yet live.
offer_table_drafts = sa.Table(
    "offer_table_drafts",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("based_on", sa.Integer),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(128), nullable=False),
)

#: Message-book versions as marketing published them (TOML text), one book per incident
#: kind and `generic` (migration 0018). The live wording is the newest version of each name.
message_books = sa.Table(
    "message_books",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_by", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    # Publication order across all names: a reader notices any publish by its highest seq.
    sa.Column("seq", sa.Integer, nullable=False),
    sa.UniqueConstraint("seq", name="uq_message_books_seq"),
)

#: Message-book drafts, one per book name, not yet live.
message_book_drafts = sa.Table(
    "message_book_drafts",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("based_on", sa.Integer),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(128), nullable=False),
)

#: API keys: only a salted scrypt hash of each secret is stored; revoking sets revoked_at.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("salt", sa.LargeBinary, nullable=False),
    sa.Column("hash", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

#: Admin-page sessions signed out before they expired: their cookies are refused by every
#: worker, also where a copy of the cookie survived. Rows past `expires_at` can go.
ended_sessions = sa.Table(
    "ended_sessions",
    metadata,
    sa.Column("nonce", sa.String(32), primary_key=True),
    sa.Column("key_id", sa.String(16), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

#: Every change made through the API by marketing, analysts and admins: who, what, when.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("key_id", sa.String(16), nullable=False),
    sa.Column("key_name", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("before", sa.Text),
    sa.Column("after", sa.Text),
)
sa.Index("ix_audit_log_at", audit_log.c.at)

#: Feedback about issued decisions (delivered, opened, redeemed, complaint, rating,
#: rebooked/returned within N days), once per caller-chosen event id; see offers.learning.feedback.
feedback_events = sa.Table(
    "feedback_events",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("incident_id", sa.String(128), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("rating", sa.Integer),
    sa.Column("within_days", sa.Integer),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index(
    "ix_feedback_decision",
    feedback_events.c.incident_id,
    feedback_events.c.step,
    feedback_events.c.customer_id,
)
