"""Offer-table lifecycle: draft -> validate -> publish -> versions -> diff -> rollback.

Published versions live in `offer_tables` (each incident kind is served by the newest that
lists it, offers.ledger.live); drafts live in `offer_table_drafts`, one per table name. The
reads and writes any versioned document has are `offers.ledger.documents`. Publishing
validates first and writes the new version (and clears the draft it came from) in one
transaction, so a reader sees the old table or the new one, never half of it. A rollback is
a publish of an old version's body, recorded as a new version: history only grows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec
import sqlalchemy as sa

from offers.catalog import (
    Change,
    Checks,
    Finding,
    OfferTable,
    TableError,
    decode_table,
    diff_tables,
    dump_table,
    errors,
)
from offers.ledger.documents import (
    Documents,
    Draft,
    NotFound,
    Ref,
    Version,
    VersionInfo,
    insert_version,
    label,
    rollback_reason,
)
from offers.ledger.live import live_names
from offers.ledger.schema import offer_table_drafts, offer_tables
from offers.ledger.store import Ledger

__all__ = [
    "Draft",
    "NotFound",
    "PublishRefused",
    "Published",
    "Ref",
    "Store",
    "TableSummary",
    "Version",
    "VersionInfo",
    "publish_table",
]


class PublishRefused(ValueError):
    """Validation found errors; nothing was published."""

    def __init__(self, name: str, findings: list[Finding]) -> None:
        self.findings = findings
        shown = "; ".join(str(f) for f in errors(findings))
        super().__init__(f"offer table {name} not published: {shown}")


class TableSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A table by name: its newest published version (if any) and whether a draft waits."""

    name: str
    latest: VersionInfo | None
    live: bool
    #: the incident kinds this table serves now (the newest table listing a kind serves it)
    kinds: list[str] = []
    draft: bool
    draft_updated_at: datetime | None = None


class Published(msgspec.Struct, frozen=True, kw_only=True):
    info: VersionInfo
    findings: list[Finding]


class Store(Documents):
    """Drafts and published versions of offer tables over one SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(engine, offer_tables, offer_table_drafts, "offer table")

    def live(self, kind: str = "flight_delay") -> Version | None:
        """The version the engine uses for `kind`: the newest published that serves it."""
        query = (
            sa.select(*self._info_columns(), offer_tables.c.body)
            .where(("," + offer_tables.c.incidents + ",").contains(f",{kind},"))
            .order_by(offer_tables.c.seq.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return Version(info=self._info(row), body=row.body) if row else None

    def live_names(self) -> dict[str, list[str]]:
        """Table name -> the incident kinds it is live for (tables live for none left out)."""
        with self.engine.connect() as conn:
            return live_names(conn)

    def tables(self) -> list[TableSummary]:
        """Every table that has a published version or a draft, by name."""
        latest, drafts = self.newest()
        live = self.live_names()
        return [
            TableSummary(
                name=name,
                latest=latest.get(name),
                live=name in live,
                kinds=live.get(name, []),
                draft=name in drafts,
                draft_updated_at=drafts.get(name),
            )
            for name in sorted(set(latest) | set(drafts))
        ]

    def table(self, name: str, ref: Ref) -> OfferTable:
        return decode_table(self.body(name, ref), f"offer table {name} {label(ref)}")

    def diff(self, name: str, before: Ref, after: Ref) -> list[Change]:
        return diff_tables(self.table(name, before), self.table(name, after))

    # --- writing ------------------------------------------------------------------

    def save_draft(
        self, table: OfferTable, by: str, now: datetime, body: str | None = None
    ) -> Draft:
        """Store `table` (its TOML `body` when given, keeping comments) as the draft."""
        return self.store_draft(
            table.name, body if body is not None else dump_table(table), by, now
        )

    def validate(self, name: str, ref: Ref, checks: Checks) -> list[Finding]:
        return checks.run(self.table(name, ref))

    def publish(
        self,
        name: str,
        *,
        by: str,
        reason: str,
        now: datetime,
        checks: Checks,
        body: str | None = None,
        examples: Callable[[OfferTable], list[Finding]] | None = None,
        acknowledge: bool = False,
    ) -> Published:
        """Validate and publish `body`, or the draft when no body is given (then clear it).

        Raises PublishRefused (with every finding) on any error; nothing is written then.
        `examples` runs the table's example cases: a failing one refuses the publish too,
        unless `acknowledge`d, and then the version's reason records which ones failed.
        """
        from_draft = body is None
        text = self.body(name, "draft") if body is None else body
        table = decode_table(text, f"offer table {name}")
        if table.name != name:
            raise TableError(f"offer table {name}: field name: the body names {table.name!r}")
        findings = checks.run(table)
        if errors(findings):
            raise PublishRefused(name, findings)
        failing = examples(table) if examples is not None else []
        if failing and not acknowledge:
            raise PublishRefused(name, findings + failing)
        if failing:
            ids = ", ".join(f.field.removeprefix("cases.") for f in failing if f.field)
            reason = f"{reason} [failing cases acknowledged: {ids}]"
            findings = findings + failing
        info = self.write_version(
            name, text, by, reason, now, clear_draft=from_draft, extra=_served(text, name)
        )
        return Published(info=info, findings=findings)

    def rollback(
        self, name: str, version: int, *, by: str, reason: str, now: datetime, checks: Checks
    ) -> Published:
        """Publish version `version` again, as a new version whose reason says so."""
        old = self.version(name, version)
        why = rollback_reason(version, reason)
        return self.publish(name, by=by, reason=why, now=now, checks=checks, body=old.body)


def _served(body: str, name: str) -> dict[str, str]:
    """The columns a version row keeps beside its body: the incident kinds it serves."""
    return {"incidents": ",".join(decode_table(body, f"offer table {name}").incidents)}


def publish_table(ledger: Ledger, name: str, body: str, by: str, reason: str, now: datetime) -> int:
    """Publish `body` as the next version of `name` without validating (a first start's
    shipped table); `Store.publish` is the checked way."""
    with ledger.writing() as tx:
        return insert_version(
            tx.conn, offer_tables, name, body, by, reason, now, **_served(body, name)
        )
