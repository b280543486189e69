"""The live offer table of each incident kind, as the engine uses it.

A server asks for the table of an incident's kind on every update. Tables are parsed once
per published version and resolved once per segmentation (persona conditions become the
segments that are each persona now, offers.catalog.coverage.resolve); whether another
process published something is checked at most once a second, with one small statement,
by the request that finds the last check older, or (`watched`) by a served worker's
refresher (api/refresher.py), so that no request waits for it. A kind that no table
serves gets a `NoTable` that says why.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from offers.catalog import (
    Coverage,
    OfferTable,
    coverage,
    coverage_drop,
    parse_table,
    personas_of,
    resolve,
)
from offers.flow import NoTable
from offers.ledger import Ledger, LiveVersion, Store, live_versions, published_table_body

__all__ = ["LiveTables", "coverage_warnings", "live_coverage"]

Traits = Mapping[str, Mapping[str, Any]]


class LiveTables:
    """Incident kind -> the live table, resolved for the served segmentation's `traits`."""

    def __init__(self, ledger: Ledger, traits: Traits) -> None:
        self.ledger = ledger
        self._traits = traits
        self._versions: dict[str, LiveVersion] = {}
        self._parsed: dict[LiveVersion, OfferTable] = {}
        self._resolved: dict[LiveVersion, OfferTable] = {}
        self._checked_at = float("-inf")
        #: a refresher calls `refresh` every second: asking never reads the ledger
        self.watched = False

    def use_traits(self, traits: Traits) -> None:
        """A new segmentation or profile snapshot: personas are matched again."""
        self._traits = traits
        self._resolved = {}

    @property
    def versions(self) -> dict[str, LiveVersion]:
        """Incident kind -> (name, version) now live."""
        self._refresh()
        return dict(self._versions)

    def refresh(self) -> None:
        """Look now, not within the second (after a publish in this process), and parse
        and resolve what went live, so that the request that next asks finds it ready."""
        self._checked_at = time.monotonic()
        self._versions = live_versions(self.ledger)
        for kind in self._versions:
            self.table(kind)

    def _refresh(self) -> None:
        if self.watched and self._checked_at > float("-inf"):
            return
        now = time.monotonic()
        if now - self._checked_at > 1.0:
            self._checked_at = now
            self._versions = live_versions(self.ledger)

    def raw(self, kind: str) -> OfferTable | None:
        """The live table of `kind` as published (personas unresolved), or None."""
        self._refresh()
        live = self._versions.get(kind)
        return None if live is None else self._parse(live)

    def _parse(self, live: LiveVersion) -> OfferTable:
        parsed = self._parsed.get(live)
        if parsed is None:
            name, version = live
            body = published_table_body(self.ledger, name, version)
            parsed = self._parsed[live] = parse_table(body, f"offer table {name} v{version}")
        return parsed

    def table(self, kind: str = "flight_delay") -> OfferTable:
        """What the engine matches for `kind`: resolved for personas, or a `NoTable`."""
        self._refresh()
        live = self._versions.get(kind)  # read once: a refresher may swap the dict meanwhile
        if live is None:
            return NoTable(name="none", why=self.why_none(kind))
        resolved = self._resolved.get(live)
        if resolved is None:
            raw = self._parse(live)
            resolved = self._resolved[live] = resolve(raw, personas_of(raw, self._traits))
        return resolved

    def why_none(self, kind: str) -> str:
        """Why `kind` gets no perk: no table lists it, naming drafts that wait."""
        store = Store(self.ledger.engine)
        drafts = [t.name for t in store.tables() if t.draft]
        waiting = f"draft {', '.join(drafts)} waits to be published" if drafts else ""
        return (
            f"no offer table is live for {kind.replace('_', ' ')} incidents"
            + (f" ({waiting})" if waiting else "")
            + "; only what the law owes and an apology"
        )


def live_coverage(ledger: Ledger, traits: Traits) -> list[Coverage]:
    """Coverage of each live table (each once, whatever kinds it serves) for `traits`."""
    tables = LiveTables(ledger, traits)
    seen: dict[LiveVersion, OfferTable] = {}
    for kind, live in sorted(tables.versions.items()):
        raw = tables.raw(kind)
        if raw is not None:
            seen.setdefault(live, raw)
    return [coverage(table, traits) for table in seen.values()]


def coverage_warnings(ledger: Ledger, before: Traits | None, after: Traits) -> list[str]:
    """What a promotion from segments `before` to `after` does to the live tables' reach:
    one warning per table whose covered share drops, naming the segments left uncovered."""
    old = {c.table: c for c in live_coverage(ledger, before)} if before is not None else {}
    return [
        warning
        for new in live_coverage(ledger, after)
        if (warning := coverage_drop(old.get(new.table), new)) is not None
    ]
