"""The profiles a running service decides on, already segmented.

Segments are assigned once when a snapshot or model is loaded (one vectorized predict), so
an incident only has to join its customer ids against this frame, and a single customer is
one dictionary lookup away.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import polars as pl

from segmentation.ids import id_hash
from segmentation.model import Segmentation

__all__ = ["PERSONAL_COLUMNS", "ProfileBook", "mask", "mask_personal"]

PERSONAL_COLUMNS: tuple[str, ...] = ("email", "phone")
"""Contact details shown only on request: they stay out of terminals and logs by default."""


def mask(value: str | None, keep: int = 2) -> str | None:
    """All but the last `keep` characters replaced by '*'."""
    if value is None:
        return None
    if len(value) <= keep:
        return "*" * len(value)
    return "*" * (len(value) - keep) + value[-keep:]


def mask_personal(profile: dict[str, Any]) -> dict[str, Any]:
    """A copy of `profile` with PERSONAL_COLUMNS masked."""
    return {k: mask(v) if k in PERSONAL_COLUMNS else v for k, v in profile.items()}


#: Up to this many ids (a flight's passengers, a few flights'), profiles are found through
#: the index the book keeps: a join would hash or scan all of the book (100 ms for 300 ids
#: in a million profiles) to find a few hundred rows.
FEW = 10_000


class ProfileBook:
    def __init__(self, profiles: pl.DataFrame, model: Segmentation) -> None:
        self.model = model
        # ids are hashed once here; incidents only salt the hash (holdout membership)
        self.frame = model.assign(profiles).with_columns(id_hash(profiles["customer_id"]))

    @classmethod
    def of_segmented(cls, frame: pl.DataFrame, model: Segmentation) -> ProfileBook:
        """A book of profiles `model` already segmented and hashed (`segmentation.assigned`)."""
        book = cls.__new__(cls)
        book.model, book.frame = model, frame
        return book

    @cached_property
    def _index(self) -> dict[str, int]:
        """Row of each id, built when a few ids are first looked up (a one-off update of
        a million customers never needs it)."""
        ids = self.frame["customer_id"]
        return dict(zip(ids.to_list(), range(len(ids)), strict=True))

    def warm(self) -> None:
        """Build the id index now: a server does, before its first request waits for it."""
        self._index  # noqa: B018

    def __len__(self) -> int:
        return self.frame.height

    def _ids(self, ids: Sequence[str] | pl.Series) -> pl.DataFrame:
        """The ids as a frame to join; a column is taken as it is, not made into a list."""
        if isinstance(ids, pl.Series):
            return ids.cast(pl.String).rename("customer_id").to_frame()
        return pl.DataFrame({"customer_id": list(ids)}, schema={"customer_id": pl.String})

    def one(self, customer_id: str) -> dict[str, Any] | None:
        """One segmented profile as a dict, in O(1); None when the id is unknown."""
        row = self._index.get(customer_id)
        if row is None:
            return None
        found = self.frame.row(row, named=True)
        found.pop("_id_hash", None)
        return found

    def select(self, ids: Sequence[str]) -> pl.DataFrame:
        """Segmented profiles of `ids`, in the order given; unknown ids are left out."""
        if len(ids) <= FEW:
            rows = [row for row in map(self._index.get, ids) if row is not None]
            return self.frame[rows]
        return self._ids(ids).join(self.frame, on="customer_id", how="inner", maintain_order="left")

    def unknown(self, ids: Sequence[str]) -> list[str]:
        """The ids of `ids` that have no profile, in the order given."""
        if len(ids) <= FEW:
            return [i for i in ids if i not in self._index]
        missing = self._ids(ids).join(
            self.frame, on="customer_id", how="anti", maintain_order="left"
        )
        return missing["customer_id"].to_list()
