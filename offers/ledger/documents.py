"""Versioned documents: what offer tables and message books share.

Both are TOML bodies that marketing drafts, checks and publishes: published versions live in
one table (`name`, `version`, `body`, who, when, why, and `seq`, the publication order
across names), drafts in another (one per name). This module holds the reads and writes
that do not depend on what the body is; `offers.ledger.versions` (offer tables) and
`offers.ledger.message_versions` (message books) add parsing, checks and what is live.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import sqlalchemy as sa

__all__ = [
    "Documents",
    "Draft",
    "NotFound",
    "Ref",
    "Version",
    "VersionInfo",
    "aware",
    "insert_version",
    "label",
    "rollback_reason",
]

Ref = int | Literal["draft", "live"]


class NotFound(LookupError):
    """No such document, version or draft."""


class VersionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Who published which version of a document, when and why."""

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


def aware(at: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def label(ref: Ref) -> str:
    return f"v{ref}" if isinstance(ref, int) else ref


def rollback_reason(version: int, reason: str) -> str:
    return f"rollback to v{version}" + (f": {reason}" if reason else "")


def insert_version(
    conn: sa.Connection,
    table: sa.Table,
    name: str,
    body: str,
    by: str,
    reason: str,
    now: datetime,
    **extra: Any,
) -> int:
    """Add the next version of `name` to `table`, last in publication order; its number.

    Two publishers racing for the same number or place collide on the keys and one
    transaction fails, to be retried by the caller.
    """
    c = table.c
    latest = conn.execute(sa.select(sa.func.max(c.version)).where(c.name == name)).scalar()
    last = conn.execute(sa.select(sa.func.max(c.seq))).scalar()
    version = (latest or 0) + 1
    conn.execute(
        table.insert().values(
            name=name,
            version=version,
            body=body,
            published_at=now,
            published_by=by,
            reason=reason,
            seq=(last or 0) + 1,
            **extra,
        )
    )
    return version


class Documents:
    """Versions and drafts of one kind of document (`what`: "offer table", "message book")."""

    def __init__(self, engine: sa.Engine, published: sa.Table, drafts: sa.Table, what: str) -> None:
        self.engine = engine
        self._published = published
        self._drafts = drafts
        self._what = what

    def _info_columns(self) -> tuple[Any, ...]:
        c = self._published.c
        return (c.name, c.version, c.published_at, c.published_by, c.reason)

    @staticmethod
    def _info(row: Any) -> VersionInfo:
        m = row._mapping
        return VersionInfo(
            name=m["name"],
            version=m["version"],
            published_at=aware(m["published_at"]),
            published_by=m["published_by"],
            reason=m["reason"],
        )

    # --- reading ------------------------------------------------------------------

    def versions(self, name: str) -> list[VersionInfo]:
        c = self._published.c
        query = sa.select(*self._info_columns()).where(c.name == name).order_by(c.version)
        with self.engine.connect() as conn:
            return [self._info(r) for r in conn.execute(query)]

    def version(self, name: str, version: int) -> Version:
        c = self._published.c
        query = sa.select(*self._info_columns(), c.body).where(c.name == name, c.version == version)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"{self._what} {name} has no version {version}")
        return Version(info=self._info(row), body=row.body)

    def latest(self, name: str) -> Version | None:
        infos = self.versions(name)
        return self.version(name, infos[-1].version) if infos else None

    def draft(self, name: str) -> Draft | None:
        query = sa.select(self._drafts).where(self._drafts.c.name == name)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return Draft(
            name=row.name,
            body=row.body,
            based_on=row.based_on,
            updated_at=aware(row.updated_at),
            updated_by=row.updated_by,
        )

    def newest(self) -> tuple[dict[str, VersionInfo], dict[str, datetime]]:
        """(name -> its newest published version, name -> when its draft was saved)."""
        c, d = self._published.c, self._drafts.c
        with self.engine.connect() as conn:
            newest = conn.execute(sa.select(c.name, sa.func.max(c.version)).group_by(c.name))
            pairs = newest.all()
            drafts = {name: aware(at) for name, at in conn.execute(sa.select(d.name, d.updated_at))}
        return {name: self.version(name, v).info for name, v in pairs}, drafts

    def body(self, name: str, ref: Ref) -> str:
        """TOML text of a version number, the `draft`, or the `live` (newest) version."""
        if ref == "draft":
            draft = self.draft(name)
            if draft is None:
                raise NotFound(f"{self._what} {name} has no draft")
            return draft.body
        if ref == "live":
            latest = self.latest(name)
            if latest is None:
                raise NotFound(f"{self._what} {name} is not published")
            return latest.body
        return self.version(name, ref).body

    # --- writing ------------------------------------------------------------------

    def store_draft(self, name: str, body: str, by: str, now: datetime) -> Draft:
        """Store `body` (kept as written) as the draft of `name`."""
        latest = self.versions(name)
        values = {
            "body": body,
            "based_on": latest[-1].version if latest else None,
            "updated_at": now,
            "updated_by": by,
        }
        d = self._drafts
        with self.engine.begin() as conn:
            updated = conn.execute(d.update().where(d.c.name == name).values(**values)).rowcount
            if not updated:
                conn.execute(d.insert().values(name=name, **values))
        return Draft(name=name, **values)  # type: ignore[arg-type]

    def delete_draft(self, name: str) -> bool:
        d = self._drafts
        with self.engine.begin() as conn:
            gone = conn.execute(d.delete().where(d.c.name == name)).rowcount
        return bool(gone)

    def write_version(
        self,
        name: str,
        body: str,
        by: str,
        reason: str,
        now: datetime,
        *,
        clear_draft: bool,
        extra: Mapping[str, Any] | None = None,
    ) -> VersionInfo:
        """Publish `body` as the next version (clearing the draft it came from) in one
        transaction, retried when another publisher wins the race for the number."""
        d = self._drafts
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    version = insert_version(
                        conn, self._published, name, body, by, reason, now, **(extra or {})
                    )
                    if clear_draft:
                        conn.execute(d.delete().where(d.c.name == name, d.c.body == body))
                break
            except (sa.exc.IntegrityError, sa.exc.OperationalError):
                if attempt == 4:
                    raise  # another publisher kept winning the race for the version number
        return VersionInfo(
            name=name, version=version, published_at=now, published_by=by, reason=reason
        )
