"""What a model remembers of its training population: each feature's deciles and shares.

Kept in the model card at training (`segmentation.model`) and compared with a newer
snapshot later (`segmentation.drift`); a module of its own so that neither of those two
imports the other's reason to exist.
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt

__all__ = ["FeatureBaseline", "baseline", "bin_counts"]


class FeatureBaseline(msgspec.Struct, frozen=True, kw_only=True):
    """A feature's decile edges and the training rows' share in each bin."""

    name: str
    edges: list[float]
    shares: list[float]


def bin_counts(
    column: npt.NDArray[np.float32], edges: npt.NDArray[np.float64]
) -> npt.NDArray[np.intp]:
    counts: npt.NDArray[np.intp] = np.bincount(
        np.searchsorted(edges, column, side="right"), minlength=len(edges) + 1
    )
    return counts


def baseline(matrix: npt.NDArray[np.float32], names: list[str]) -> list[FeatureBaseline]:
    """Decile edges of each column (duplicates merged) and the rows' share per bin."""
    result = []
    deciles = np.quantile(matrix, np.linspace(0.1, 0.9, 9), axis=0)
    for j, name in enumerate(names):
        edges = np.unique(deciles[:, j].astype(np.float64))
        counts = bin_counts(matrix[:, j], edges)
        shares = counts / max(len(matrix), 1)
        result.append(
            FeatureBaseline(
                name=name,
                edges=[float(e) for e in edges],
                shares=[round(float(s), 6) for s in shares],
            )
        )
    return result
