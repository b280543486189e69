"""Carry segment names from the active version to a newly trained one.

Both versions' centroids are taken back to raw feature units (each scaler's inverse) and
re-standardized with the PARENT's scaler, so distances are measured in one space: the one
the parent's names were given in. Only feature columns both versions share count. Clusters
are then paired by optimal assignment (Hungarian method) on RMS distance; a pair further
apart than `max_distance` (in parent z-units) is not a match. Matched clusters keep the
parent's name (analyst renames included); the rest are new, and unmatched parent names are
the vanished ones.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

__all__ = ["MAX_DISTANCE", "Match", "match_clusters", "shared_space_distances"]

MAX_DISTANCE = 1.5
"""Furthest a new centroid may be from a parent's (RMS, parent z-units) and keep its name."""

Array = npt.NDArray[np.float64]


class Match(msgspec.Struct, frozen=True, kw_only=True):
    new: int
    parent: int
    distance: float


def _raw_centers(pipeline: Any) -> Array:
    from segmentation.estimators import centers

    scaler = pipeline.steps[0][1]
    raw: Array = scaler.inverse_transform(np.asarray(centers(pipeline), dtype=np.float64))
    return raw


def shared_space_distances(
    new: Any, new_columns: list[str], parent: Any, parent_columns: list[str]
) -> Array:
    """RMS distance of each new centroid (rows) to each parent centroid (columns)."""
    common = [c for c in new_columns if c in parent_columns]
    if not common:
        raise ValueError("the two versions share no feature; names cannot carry over")
    ni = [new_columns.index(c) for c in common]
    pi = [parent_columns.index(c) for c in common]
    scaler = parent.steps[0][1]
    mean, factor = scaler.mean_[pi], (scaler.weights_ / scaler.scale_)[pi]
    a = (_raw_centers(new)[:, ni] - mean) * factor
    b = (_raw_centers(parent)[:, pi] - mean) * factor
    squared = ((a[:, None, :] - b[None, :, :]) ** 2).mean(axis=2)
    distances: Array = np.sqrt(squared)
    return distances


def match_clusters(distances: Array, max_distance: float = MAX_DISTANCE) -> list[Match]:
    """Optimal one-to-one pairs (new, parent) no further apart than `max_distance`."""
    from scipy.optimize import linear_sum_assignment  # 0.5 s to import: only when matching

    rows, cols = linear_sum_assignment(distances)
    return [
        Match(new=int(r), parent=int(c), distance=round(float(distances[r, c]), 4))
        for r, c in zip(rows, cols, strict=True)
        if distances[r, c] <= max_distance
    ]
