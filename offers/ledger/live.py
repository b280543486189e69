"""Which offer table is live for each incident kind.

Every published version records the incident kinds it serves; a kind is served by the newest
published version that lists it, whatever its name. Publishing `late-order` v3 changes
nothing for flights; publishing a table that lists `flight_delay` takes flights over. The
question is asked every second by every server, so it is one small statement, and bodies
are read only for the versions that answer it.
"""

from __future__ import annotations

import sqlalchemy as sa

from offers.catalog import OfferTable, parse_table
from offers.ledger.schema import offer_tables
from offers.ledger.store import Ledger

__all__ = [
    "LiveVersion",
    "live_names",
    "live_segment_names",
    "live_versions",
    "published_table",
    "published_table_body",
    "segment_names_used",
]

LiveVersion = tuple[str, int]
"""(table name, version)"""


def _newest_per_kind(conn: sa.Connection) -> dict[str, tuple[str, int]]:
    newest = (
        sa.select(offer_tables.c.name, sa.func.max(offer_tables.c.seq).label("seq"))
        .group_by(offer_tables.c.name)
        .subquery()
    )
    rows = conn.execute(
        sa.select(offer_tables.c.name, offer_tables.c.version, offer_tables.c.incidents)
        .join(
            newest,
            (newest.c.name == offer_tables.c.name) & (newest.c.seq == offer_tables.c.seq),
        )
        .order_by(offer_tables.c.seq.desc())
    ).all()
    out: dict[str, tuple[str, int]] = {}
    for name, version, incidents in rows:
        for kind in incidents.split(","):
            out.setdefault(kind, (name, version))
    return out


def live_versions(ledger: Ledger) -> dict[str, LiveVersion]:
    """Incident kind -> (name, version) of the table serving it; kinds without one absent."""
    with ledger.reading() as tx:
        return _newest_per_kind(tx.conn)


def live_names(conn: sa.Connection) -> dict[str, list[str]]:
    """Table name -> the incident kinds it serves now."""
    out: dict[str, list[str]] = {}
    for kind, (name, _version) in _newest_per_kind(conn).items():
        out.setdefault(name, []).append(kind)
    return out


def published_table(ledger: Ledger, kind: str = "flight_delay") -> tuple[str, int, str] | None:
    """(name, version, TOML body) of the table serving `kind`, if any."""
    live = live_versions(ledger).get(kind)
    if live is None:
        return None
    name, version = live
    return name, version, published_table_body(ledger, name, version)


def segment_names_used(table: OfferTable) -> dict[str, list[str]]:
    """Segment name -> ids of the rules whose `when.segment` names it (or that pin it to a
    persona)."""
    used: dict[str, list[str]] = {}
    for rule in table.rules:
        condition = rule.when.get("segment")
        names = [condition] if isinstance(condition, str) else condition
        if isinstance(names, list):
            for name in names:
                used.setdefault(name, []).append(rule.id)
    for persona in table.personas:
        for name in persona.segments:
            used.setdefault(name, []).append(f"persona {persona.id}")
    return used


def live_segment_names(ledger: Ledger) -> dict[str, list[str]]:
    """Segment names the live tables rely on by name (what a rename or promotion must keep)."""
    used: dict[str, list[str]] = {}
    for name, version in set(live_versions(ledger).values()):
        body = published_table_body(ledger, name, version)
        table = parse_table(body, f"offer table {name} v{version}")
        for segment, rules in segment_names_used(table).items():
            used.setdefault(segment, []).extend(rules)
    return used


def published_table_body(ledger: Ledger, name: str, version: int) -> str:
    query = sa.select(offer_tables.c.body).where(
        offer_tables.c.name == name, offer_tables.c.version == version
    )
    with ledger.reading() as tx:
        body: str = tx.conn.execute(query).scalar_one()
    return body
