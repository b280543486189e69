"""Has the population moved since a model was trained?

At training, each feature's deciles and the training rows' shares in them are kept in the
card. Later, a newer snapshot is binned on the same edges and compared with the population
stability index (PSI); segment shares are compared the same way. PSI above 0.2 is flagged
(the usual reading: < 0.1 stable, 0.1-0.2 moderate, > 0.2 significant shift).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import numpy as np
import numpy.typing as npt

from segmentation.baseline import bin_counts
from segmentation.features import Source, matrix_batches, source_rows, without_objectors
from segmentation.model import Segmentation

__all__ = [
    "FLAG_ABOVE",
    "DriftReport",
    "FeatureDrift",
    "SegmentShift",
    "measure_drift",
    "psi",
]

FLAG_ABOVE = 0.2
_EPSILON = 1e-4  # share given to an empty bin, so the log stays finite


class FeatureDrift(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    psi: float
    flagged: bool


class SegmentShift(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    train_share: float
    new_share: float
    shift: float


class DriftReport(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    rows: int
    features: list[FeatureDrift]
    segments: list[SegmentShift]
    segment_psi: float
    flagged: bool
    threshold: float = FLAG_ABOVE


def psi(expected: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), _EPSILON)
    a = np.maximum(np.asarray(actual, dtype=np.float64), _EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def measure_drift(
    model: Segmentation,
    source: Source,
    *,
    batch_rows: int = 1_000_000,
    advance: Callable[[int, int], None] | None = None,
) -> DriftReport:
    """PSI per feature and of segment shares between the model's training data and `source`.

    Every row of `source` is binned and assigned in batches, so files larger than memory
    work too. Customers who objected to profiling are left out, as they were in training.
    """
    source = without_objectors(source)
    card = model.card
    if not card.baseline:
        raise ValueError(f"segmentation {card.version} has no drift baseline (retrain it)")
    edges = [np.asarray(b.edges, dtype=np.float64) for b in card.baseline]
    counts = [np.zeros(len(e) + 1, dtype=np.int64) for e in edges]
    sizes = np.zeros(card.k, dtype=np.int64)
    total, done = source_rows(source), 0
    for matrix in matrix_batches(source, card.spec, batch_rows):
        for j, e in enumerate(edges):
            counts[j] += bin_counts(matrix[:, j], e)
        sizes += np.bincount(model.predict(matrix), minlength=card.k)
        done += len(matrix)
        if advance is not None:
            advance(done, total)
    rows = max(done, 1)
    features = []
    for b, c in zip(card.baseline, counts, strict=True):
        value = psi(b.shares, c / rows)
        features.append(FeatureDrift(name=b.name, psi=round(value, 4), flagged=value > FLAG_ABOVE))
    train = np.array([s.size for s in card.segments], dtype=np.float64) / max(card.rows, 1)
    new = sizes[[s.cluster for s in card.segments]] / rows
    segments = [
        SegmentShift(
            name=s.name,
            train_share=round(float(t), 4),
            new_share=round(float(n), 4),
            shift=round(float(n - t), 4),
        )
        for s, t, n in zip(card.segments, train, new, strict=True)
    ]
    segment_psi = psi(train, new)
    return DriftReport(
        version=card.version,
        rows=done,
        features=features,
        segments=segments,
        segment_psi=round(segment_psi, 4),
        flagged=segment_psi > FLAG_ABOVE or any(f.flagged for f in features),
    )
