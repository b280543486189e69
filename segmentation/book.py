"""The profiles a running service decides on, already segmented.

Segments are assigned once when a snapshot or model is loaded (one vectorized predict), so
an incident only has to join its customer ids against this frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from segmentation.model import Segmentation


class ProfileBook:
    def __init__(self, profiles: pl.DataFrame, model: Segmentation) -> None:
        self.model = model
        self.frame = model.assign(profiles)

    def __len__(self) -> int:
        return self.frame.height

    def _ids(self, ids: Sequence[str]) -> pl.DataFrame:
        return pl.DataFrame({"customer_id": list(ids)}, schema={"customer_id": pl.String})

    def select(self, ids: Sequence[str]) -> pl.DataFrame:
        """Segmented profiles of `ids`, in the order given; unknown ids are left out."""
        return self._ids(ids).join(self.frame, on="customer_id", how="inner", maintain_order="left")

    def unknown(self, ids: Sequence[str]) -> list[str]:
        """The ids of `ids` that have no profile, in the order given."""
        missing = self._ids(ids).join(
            self.frame, on="customer_id", how="anti", maintain_order="left"
        )
        return missing["customer_id"].to_list()
