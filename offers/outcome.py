"""What an incident update answers: counts at once, decisions read on demand or by page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

import polars as pl

from offers.ledger import Ledger

__all__ = ["Outcome", "ledger_pages"]


@dataclass
class Outcome:
    """What an update did. `decisions` (every decision at this step) is read on first use:
    a million-customer job reports counts and never needs them in memory twice. `total`
    and `charged` (decisions at this step, what they charged) are known without reading
    them, and `pages` hands them out a page at a time."""

    incident_id: str
    step: int
    delay_minutes: int
    issued: int
    load: Callable[[], pl.DataFrame]
    dry_run: bool = False
    budget: float | None = None
    spent: float = 0.0
    #: This update opened the incident (decided under its lock: concurrent creators of one
    #: incident see it true exactly once). A dry run says whether it would.
    created: bool = False
    total: int | None = None
    charged: float | None = None
    #: A page of the step's decisions after a customer id (None: from the first), in
    #: customer order; without it, pages are cut from `decisions`.
    page: Callable[[str | None, int], pl.DataFrame] | None = None

    @cached_property
    def decisions(self) -> pl.DataFrame:
        return self.load()

    @property
    def count(self) -> int:
        """How many decisions this step holds (with a dry run's, as if recorded)."""
        return self.total if self.total is not None else self.decisions.height

    @property
    def cost(self) -> float:
        """What this step's decisions charged against the incident (upgrades: the difference)."""
        if self.charged is not None:
            return self.charged
        return float(self.decisions["charged_cost"].fill_null(0.0).sum())

    def pages(self, size: int = 50_000) -> Iterator[pl.DataFrame]:
        """The step's decisions in customer order, `size` at a time: a writer of a million
        of them never holds more than a page read from the ledger."""
        if self.page is None:
            yield from self.decisions.iter_slices(size)
            return
        after: str | None = None
        while True:
            frame = self.page(after, size)
            if frame.height:
                yield frame
            if frame.height < size:
                return
            after = frame["customer_id"][-1]


def ledger_pages(
    ledger: Ledger, incident_id: str, step: int
) -> Callable[[str | None, int], pl.DataFrame]:
    """A page of the step's stored decisions after a customer id, read on the key's index."""

    def page(after: str | None, size: int) -> pl.DataFrame:
        with ledger.reading() as tx:
            return tx.decisions(incident_id, step=step, limit=size, after=after)

    return page
