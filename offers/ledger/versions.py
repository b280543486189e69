"""Offer-table lifecycle: draft -> validate -> publish -> versions -> diff -> rollback.

Published versions live in `offer_tables` (the engine reads the newest by `published_at`);
drafts live in `offer_table_drafts`, one per table name. Publishing validates first and
writes the new version (and clears the draft it came from) in one transaction, so a reader
sees the old table or the new one, never half of it. A rollback is a publish of an old
version's body, recorded as a new version: history only grows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

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
from offers.ledger.live import live_names
from offers.ledger.schema import offer_table_drafts, offer_tables
from offers.ledger.store import Ledger

__all__ = [
    "Draft",
    "NotFound",
    "PublishRefused",
    "Published",
    "Store",
    "TableSummary",
    "Version",
    "VersionInfo",
    "publish_table",
]

Ref = int | Literal["draft", "live"]


class NotFound(LookupError):
    """No such table, version or draft."""


class PublishRefused(ValueError):
    """Validation found errors; nothing was published."""

    def __init__(self, name: str, findings: list[Finding]) -> None:
        self.findings = findings
        shown = "; ".join(str(f) for f in errors(findings))
        super().__init__(f"offer table {name} not published: {shown}")


class VersionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Who published which version of a table, when and why."""

    name: str
    version: int
    published_at: datetime
    published_by: str
    reason: str


class Version(msgspec.Struct, frozen=True, kw_only=True):
    info: VersionInfo
    body: str


class Draft(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    body: str
    based_on: int | None
    updated_at: datetime
    updated_by: str


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


def _info(row: Any) -> VersionInfo:
    m = row._mapping
    return VersionInfo(
        name=m["name"],
        version=m["version"],
        published_at=_aware(m["published_at"]),
        published_by=m["published_by"],
        reason=m["reason"],
    )


_INFO = (
    offer_tables.c.name,
    offer_tables.c.version,
    offer_tables.c.published_at,
    offer_tables.c.published_by,
    offer_tables.c.reason,
)


class Store:
    """Drafts and published versions of offer tables over one SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # --- reading ------------------------------------------------------------------

    def versions(self, name: str) -> list[VersionInfo]:
        query = (
            sa.select(*_INFO).where(offer_tables.c.name == name).order_by(offer_tables.c.version)
        )
        with self.engine.connect() as conn:
            return [_info(r) for r in conn.execute(query)]

    def version(self, name: str, version: int) -> Version:
        query = sa.select(*_INFO, offer_tables.c.body).where(
            offer_tables.c.name == name, offer_tables.c.version == version
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"offer table {name} has no version {version}")
        return Version(info=_info(row), body=row.body)

    def live(self, kind: str = "flight_delay") -> Version | None:
        """The version the engine uses for `kind`: the newest published that serves it."""
        query = (
            sa.select(*_INFO, offer_tables.c.body)
            .where(("," + offer_tables.c.incidents + ",").contains(f",{kind},"))
            .order_by(offer_tables.c.seq.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return Version(info=_info(row), body=row.body) if row else None

    def live_names(self) -> dict[str, list[str]]:
        """Table name -> the incident kinds it is live for (tables live for none left out)."""
        with self.engine.connect() as conn:
            return live_names(conn)

    def latest(self, name: str) -> Version | None:
        infos = self.versions(name)
        return self.version(name, infos[-1].version) if infos else None

    def draft(self, name: str) -> Draft | None:
        query = sa.select(offer_table_drafts).where(offer_table_drafts.c.name == name)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return Draft(
            name=row.name,
            body=row.body,
            based_on=row.based_on,
            updated_at=_aware(row.updated_at),
            updated_by=row.updated_by,
        )

    def tables(self) -> list[TableSummary]:
        """Every table that has a published version or a draft, by name."""
        with self.engine.connect() as conn:
            newest = conn.execute(
                sa.select(offer_tables.c.name, sa.func.max(offer_tables.c.version)).group_by(
                    offer_tables.c.name
                )
            ).all()
            drafts = {
                name: _aware(at)
                for name, at in conn.execute(
                    sa.select(offer_table_drafts.c.name, offer_table_drafts.c.updated_at)
                )
            }
        live = self.live_names()
        latest = {name: self.version(name, v).info for name, v in newest}
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

    def body(self, name: str, ref: Ref) -> str:
        """TOML text of a version number, the `draft`, or the `live` (newest) version."""
        if ref == "draft":
            draft = self.draft(name)
            if draft is None:
                raise NotFound(f"offer table {name} has no draft")
            return draft.body
        if ref == "live":
            latest = self.latest(name)
            if latest is None:
                raise NotFound(f"offer table {name} is not published")
            return latest.body
        return self.version(name, ref).body

    def table(self, name: str, ref: Ref) -> OfferTable:
        return decode_table(self.body(name, ref), f"offer table {name} {_label(ref)}")

    def diff(self, name: str, before: Ref, after: Ref) -> list[Change]:
        return diff_tables(self.table(name, before), self.table(name, after))

    # --- writing ------------------------------------------------------------------

    def save_draft(
        self, table: OfferTable, by: str, now: datetime, body: str | None = None
    ) -> Draft:
        """Store `table` (its TOML `body` when given, keeping comments) as the draft."""
        text = body if body is not None else dump_table(table)
        latest = self.versions(table.name)
        values = {
            "body": text,
            "based_on": latest[-1].version if latest else None,
            "updated_at": now,
            "updated_by": by,
        }
        with self.engine.begin() as conn:
            updated = conn.execute(
                offer_table_drafts.update()
                .where(offer_table_drafts.c.name == table.name)
                .values(**values)
            ).rowcount
            if not updated:
                conn.execute(offer_table_drafts.insert().values(name=table.name, **values))
        return Draft(name=table.name, **values)  # type: ignore[arg-type]

    def delete_draft(self, name: str) -> bool:
        with self.engine.begin() as conn:
            gone = conn.execute(
                offer_table_drafts.delete().where(offer_table_drafts.c.name == name)
            ).rowcount
        return bool(gone)

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
        for attempt in range(5):
            try:
                info = self._insert(name, text, by, reason, now, clear_draft=from_draft)
                break
            except (sa.exc.IntegrityError, sa.exc.OperationalError):
                if attempt == 4:
                    raise  # another publisher kept winning the race for the version number
        return Published(info=info, findings=findings)

    def _insert(
        self, name: str, body: str, by: str, reason: str, now: datetime, clear_draft: bool
    ) -> VersionInfo:
        with self.engine.begin() as conn:
            version = insert_version(conn, name, body, by, reason, now)
            if clear_draft:
                conn.execute(
                    offer_table_drafts.delete().where(
                        offer_table_drafts.c.name == name, offer_table_drafts.c.body == body
                    )
                )
        return VersionInfo(
            name=name, version=version, published_at=now, published_by=by, reason=reason
        )

    def rollback(
        self, name: str, version: int, *, by: str, reason: str, now: datetime, checks: Checks
    ) -> Published:
        """Publish version `version` again, as a new version whose reason says so."""
        old = self.version(name, version)
        why = f"rollback to v{version}" + (f": {reason}" if reason else "")
        return self.publish(name, by=by, reason=why, now=now, checks=checks, body=old.body)


def insert_version(
    conn: sa.Connection, name: str, body: str, by: str, reason: str, now: datetime
) -> int:
    """Add the next version of `name`, last in publication order; returns its number.

    Two publishers racing for the same number or place collide on the keys and one
    transaction fails, to be retried by the caller.
    """
    latest = conn.execute(
        sa.select(sa.func.max(offer_tables.c.version)).where(offer_tables.c.name == name)
    ).scalar()
    last = conn.execute(sa.select(sa.func.max(offer_tables.c.seq))).scalar()
    version = (latest or 0) + 1
    conn.execute(
        offer_tables.insert().values(
            incidents=",".join(decode_table(body, f"offer table {name}").incidents),
            name=name,
            version=version,
            body=body,
            published_at=now,
            published_by=by,
            reason=reason,
            seq=(last or 0) + 1,
        )
    )
    return version


def _aware(at: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _label(ref: Ref) -> str:
    return f"v{ref}" if isinstance(ref, int) else ref


def publish_table(ledger: Ledger, name: str, body: str, by: str, reason: str, now: datetime) -> int:
    """Publish `body` as the next version of `name` without validating (a first start's
    shipped table); `Store.publish` is the checked way."""
    with ledger.writing() as tx:
        return insert_version(tx.conn, name, body, by, reason, now)
