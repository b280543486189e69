"""Message-book lifecycle: draft -> validate -> publish -> versions -> diff -> rollback.

The same lifecycle as offer tables (`offers.ledger.versions`), for the wording: one book
per incident kind and `generic` (`offers.messages.books`). Published versions live in
`message_books`, drafts in `message_book_drafts`. Publishing checks first and writes the
version (clearing the draft it came from) in one transaction; a rollback publishes an old
version's body again as a new version. The live wording is the newest version of every
book, merged; `live_stamp` lets a server notice any publish with one cheap query.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec
import sqlalchemy as sa

from offers.ledger.documents import (
    Documents,
    Draft,
    Ref,
    Version,
    VersionInfo,
    insert_version,
    label,
    rollback_reason,
)
from offers.ledger.schema import decision_reasons, decisions, message_book_drafts, message_books
from offers.ledger.store import Ledger
from offers.messages import MessageBook, TemplateFinding
from offers.messages.books import (
    BookChange,
    decode_book,
    diff_books,
    dump_book,
    merge_books,
    split_book,
)

__all__ = [
    "BookPublished",
    "BookRefused",
    "BookSummary",
    "BookVersion",
    "Check",
    "MessageStore",
    "live_books",
    "live_stamp",
    "publish_book",
    "publish_shipped_books",
    "wording_books",
]

#: Checks a book by name: every finding; any error refuses a publish.
Check = Callable[[str, MessageBook], list[TemplateFinding]]


class BookRefused(ValueError):
    """The book has errors; nothing was published."""

    def __init__(self, name: str, findings: list[TemplateFinding]) -> None:
        self.findings = findings
        shown = "; ".join(str(f) for f in findings if f.severity == "error")
        super().__init__(f"message book {name} not published: {shown}")


BookVersion = Version


class BookSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A book by name: its newest published version (if any) and whether a draft waits."""

    name: str
    latest: VersionInfo | None
    draft: bool
    draft_updated_at: datetime | None = None


class BookPublished(msgspec.Struct, frozen=True, kw_only=True):
    info: VersionInfo
    findings: list[TemplateFinding]


class MessageStore(Documents):
    """Drafts and published versions of message books over one SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(engine, message_books, message_book_drafts, "message book")

    def books(self) -> list[BookSummary]:
        """Every book that has a published version or a draft, by name."""
        latest, drafts = self.newest()
        return [
            BookSummary(
                name=name,
                latest=latest.get(name),
                draft=name in drafts,
                draft_updated_at=drafts.get(name),
            )
            for name in sorted(set(latest) | set(drafts))
        ]

    def book(self, name: str, ref: Ref) -> MessageBook:
        return decode_book(self.body(name, ref), f"message book {name} {label(ref)}")

    def diff(self, name: str, before: Ref, after: Ref) -> list[BookChange]:
        return diff_books(self.book(name, before), self.book(name, after))

    def save_draft(self, name: str, body: str, by: str, now: datetime) -> Draft:
        """Store `body` (TOML, kept as written) as the draft of book `name`."""
        return self.store_draft(name, body, by, now)

    def publish(
        self,
        name: str,
        *,
        by: str,
        reason: str,
        now: datetime,
        check: Check,
        body: str | None = None,
    ) -> BookPublished:
        """Check and publish `body`, or the draft when no body is given (then clear it).

        Raises BookRefused (with every finding) on any error; nothing is written then.
        """
        from_draft = body is None
        text = self.body(name, "draft") if body is None else body
        findings = check(name, decode_book(text, f"message book {name}"))
        if any(f.severity == "error" for f in findings):
            raise BookRefused(name, findings)
        info = self.write_version(name, text, by, reason, now, clear_draft=from_draft)
        return BookPublished(info=info, findings=findings)

    def rollback(
        self, name: str, version: int, *, by: str, reason: str, now: datetime, check: Check
    ) -> BookPublished:
        """Publish version `version` again, as a new version whose reason says so."""
        old = self.version(name, version)
        why = rollback_reason(version, reason)
        return self.publish(name, by=by, reason=why, now=now, check=check, body=old.body)


def publish_book(ledger: Ledger, name: str, body: str, by: str, reason: str, now: datetime) -> int:
    """Publish `body` as the next version of `name` without checking (a first start's
    shipped books); `MessageStore.publish` is the checked way."""
    with ledger.writing() as tx:
        return insert_version(tx.conn, message_books, name, body, by, reason, now)


def publish_shipped_books(ledger: Ledger, book: MessageBook, now: datetime) -> list[str]:
    """A first start: the shipped wording as one published book per incident kind, in one
    transaction. Another host starting at the same moment may win the race; then its books
    stand and nothing more is published here."""
    books = split_book(book)
    try:
        with ledger.writing() as tx:
            for name, one in sorted(books.items()):
                body = dump_book(one)
                insert_version(
                    tx.conn, message_books, name, body, "makegood bootstrap", "shipped wording", now
                )
    except sa.exc.IntegrityError:
        if live_stamp(ledger) == 0:
            raise
        return []
    return sorted(books)


def live_stamp(ledger: Ledger) -> int:
    """The highest publication number: it changes with every publish of any book."""
    with ledger.reading() as tx:
        return int(tx.conn.execute(sa.select(sa.func.max(message_books.c.seq))).scalar() or 0)


def live_books(ledger: Ledger) -> MessageBook | None:
    """The live wording: the newest version of every book, merged (None: none published)."""
    newest = (
        sa.select(message_books.c.name, sa.func.max(message_books.c.version).label("v"))
        .group_by(message_books.c.name)
        .subquery()
    )
    query = sa.select(message_books.c.name, message_books.c.version, message_books.c.body).join(
        newest,
        (message_books.c.name == newest.c.name) & (message_books.c.version == newest.c.v),
    )
    with ledger.reading() as tx:
        rows = tx.conn.execute(query).all()
    if not rows:
        return None
    return merge_books(
        {
            row.name: (
                row.version,
                decode_book(row.body, f"message book {row.name} v{row.version}"),
            )
            for row in rows
        }
    )


def wording_books(ledger: Ledger, incident_id: str, customer_id: str) -> dict[int, str | None]:
    """Step -> the message book version (`<book> v<N>`) a customer's message came from."""
    d, w = decisions.c, decision_reasons.c
    query = (
        sa.select(d.step, w.message_book)
        .select_from(
            decisions.outerjoin(
                decision_reasons,
                (w.incident_id == d.incident_id) & (w.reason_id == d.reason_id),
            )
        )
        .where(d.incident_id == incident_id, d.customer_id == customer_id)
    )
    with ledger.reading() as tx:
        return {row.step: row.message_book for row in tx.conn.execute(query)}
