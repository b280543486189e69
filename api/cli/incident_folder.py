"""The data folder's parts for one incident command, each loaded when first needed.

The ledger is opened at once; the segmentation and the segmented profiles only when
something is to be decided. A replay that finds everyone decided at this step therefore
costs a read of the snapshot's ids and a few counts, not a model load and a million
segment assignments.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from api.runtime import Runtime, Step, ensure_bootstrapped, learning_source, open_runtime
from api.settings import Settings
from offers.flow import Parts
from offers.incidents import EscalationPolicy
from offers.ledger import Ledger, create_engine
from offers.ledger.message_versions import live_books
from offers.messages import load_default_book

__all__ = ["Folder"]


class Folder:
    """One command's view of the data folder: `parts()` for `offers.flow.apply_update`,
    whose profile reads and table load the runtime (`runtime`) on first use."""

    def __init__(self, settings: Settings, step: Step, *, profiles: bool = True) -> None:
        ensure_bootstrapped(settings, step)
        self.settings, self._step, self._profiles = settings, step, profiles
        self.engine = create_engine(settings.db_url)
        self.ledger = Ledger(self.engine)
        self._runtime: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        """The active segmentation, the newest profiles segmented, the live tables."""
        if self._runtime is None:
            self._runtime = open_runtime(self.settings, self._step, profiles=self._profiles)
        return self._runtime

    def snapshot(self) -> Path:
        return sorted((self.settings.data_dir / "profiles").glob("snapshot-*.parquet"))[-1]

    def unknown(self, ids: Sequence[str]) -> list[str]:
        """The ids with no profile in the newest snapshot, in the order given (its id
        column alone is read)."""
        known = pl.scan_parquet(self.snapshot()).select("customer_id").collect()
        asked = pl.DataFrame({"customer_id": ids}, schema={"customer_id": pl.String})
        missing = asked.join(known, on="customer_id", how="anti", maintain_order="left")
        return missing["customer_id"].to_list()

    def parts(self) -> Parts:
        return Parts(
            select_profiles=lambda ids: self.runtime.book.select(ids),
            unknown_profiles=self.unknown,
            ledger=self.ledger,
            table=lambda kind: self.runtime.table(kind),
            book=live_books(self.ledger) or load_default_book(),
            policy=EscalationPolicy(),
            learning=learning_source(self.settings, self.ledger),
        )

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
        self.engine.dispose()
