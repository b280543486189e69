"""How many segments: the k search, its rule, and the record of it kept on the model card.

The rule, in order:
1. Count the distinct encoded profile patterns, d. Near-discrete features (a one-hot class,
   an ordinal loyalty, a travel type) have few. A segment needs a pattern of its own, so
   k is at most d: more would leave segments empty.
2. If d is below the smallest k searched, k = d: every pattern is its own segment.
3. Otherwise each k in the range (up to d) is fitted on a subsample and scored by
   silhouette; the best wins, and k within TIE of the best go to the smallest k. (With
   k = d every pattern is a point, so the silhouette is 1.0; larger k would score 1.0 too
   while explaining nothing more: the tie rule keeps the smallest k that explains them.)
Fewer than two patterns cannot be segmented at all: training says so. A fit that still
leaves a cluster with nobody in it is refitted with that many fewer (`fit_without_empty`).
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

__all__ = [
    "KChoice",
    "KScore",
    "choose_k",
    "distinct_patterns",
    "fit_without_empty",
    "silhouette",
]

SEARCH_ROWS = 20_000  # rows each candidate k is fitted on
SILHOUETTE_ROWS = 4_000  # rows silhouette is scored on (it is quadratic)
TIE = 0.001  # silhouettes closer than this to the best count as equal: the smaller k wins


class KScore(msgspec.Struct, frozen=True):
    k: int
    silhouette: float


class KChoice(msgspec.Struct, frozen=True, kw_only=True):
    """The chosen k, every k tried with its score, and the rule that decided, in words."""

    k: int
    patterns: int | None  # distinct encoded profiles; None when more than the range needs
    scores: list[KScore]
    rule: str


def silhouette(scaled: npt.NDArray[Any], labels: npt.NDArray[Any], seed: int) -> float:
    """Silhouette on at most SILHOUETTE_ROWS rows; 0.0 when fewer than two clusters show."""
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2:
        return 0.0
    idx = np.random.default_rng(seed).permutation(len(scaled))[:SILHOUETTE_ROWS]
    if len(np.unique(labels[idx])) < 2:
        return 0.0
    return float(silhouette_score(scaled[idx], labels[idx]))


def distinct_patterns(matrix: npt.NDArray[Any], limit: int) -> int | None:
    """Distinct rows of `matrix`, or None when there are more than `limit`.

    A subsample is counted first: continuous data is told apart without sorting every row.
    """
    head = np.ascontiguousarray(matrix[: 4 * limit + 64])
    if len(_unique_rows(head)) > limit:
        return None
    count = len(_unique_rows(np.ascontiguousarray(matrix)))
    return count if count <= limit else None


def _unique_rows(matrix: npt.NDArray[Any]) -> npt.NDArray[Any]:
    rows = matrix.view(np.dtype((np.void, matrix.dtype.itemsize * matrix.shape[1])))
    return np.unique(rows.ravel())


def choose_k(
    sample: npt.NDArray[Any],
    weights: list[float],
    algorithm: str,
    ks: range,
    seed: int,
    say: Any = lambda _msg: None,
) -> KChoice:
    """k for `sample` by the module's rule; `say` hears each k's silhouette and the rule."""
    from threadpoolctl import threadpool_limits

    from segmentation.estimators import make_pipeline

    patterns = distinct_patterns(sample, max(ks[-1], ks[0]))
    if patterns is not None and patterns < 2:
        raise ValueError(
            "every profile has the same feature values: nothing to segment "
            "(choose features that differ between customers)"
        )
    if patterns is not None and patterns <= ks[0]:
        rule = (
            f"only {patterns} distinct profile patterns in the features: "
            f"k={patterns}, one segment per pattern"
        )
        say(rule)
        return KChoice(k=patterns, patterns=patterns, scores=[], rule=rule)
    top = ks[-1] if patterns is None else min(ks[-1], patterns)
    idx = np.random.default_rng(seed).permutation(len(sample))[:SEARCH_ROWS]
    rows = sample[idx]
    scores: list[KScore] = []
    for k in range(ks[0], top + 1, ks.step):
        if k >= len(rows):
            break
        with threadpool_limits(limits=1):  # small fits: threads only add overhead
            pipeline = make_pipeline(weights, algorithm, k, seed).fit(rows)
            score = silhouette(pipeline[:-1].transform(rows), pipeline.predict(rows), seed)
        say(f"k={k}: silhouette {score:.3f}")
        scores.append(KScore(k, round(score, 4)))
    if not scores:
        raise ValueError(f"too few profiles ({len(sample)}) to try k={ks[0]}")
    best = max(s.silhouette for s in scores)
    k = min(s.k for s in scores if s.silhouette >= best - TIE)
    searched = f"k={scores[0].k}…{scores[-1].k}"
    if patterns is not None and top < ks[-1]:
        searched += (
            f" (at most {patterns}: only {patterns} distinct profile patterns in the features)"
        )
    ties = [s.k for s in scores if s.silhouette >= best - TIE]
    rule = f"searched {searched}; best silhouette {best:.3f} at k={k}"
    if len(ties) > 1:
        rule += f", the smallest of k={', '.join(map(str, ties))} that score it"
    say(rule)
    return KChoice(k=k, patterns=patterns, scores=scores, rule=rule)


def fit_without_empty(
    sample: npt.NDArray[Any],
    weights: list[float],
    algorithm: str,
    k: int,
    seed: int,
    rule: str,
    say: Any = lambda _msg: None,
) -> tuple[Any, npt.NDArray[Any], str]:
    """The pipeline fitted with k clusters, the sample's labels and `rule` with any refit.

    A cluster no training row falls in would be a segment with 0 customers: named, shown,
    offered to, and never reached. While one is left, refit with that many fewer.
    """
    from segmentation.estimators import make_pipeline

    while True:
        say(f"fitting {algorithm} with k={k} on {len(sample):,} profiles")
        pipeline = make_pipeline(weights, algorithm, k, seed).fit(sample)
        cluster = pipeline.steps[-1][1]
        if hasattr(cluster, "labels_"):
            del cluster.labels_  # one label per training row: not part of the model
        labels: npt.NDArray[Any] = cluster.predict(pipeline[:-1].transform(sample))
        used = len(np.unique(labels))
        if used == k or used < 2:
            return pipeline, labels, rule
        note = f"k={k} left {k - used} segment(s) empty; refitted with k={used}"
        say(note)
        rule, k = f"{rule}; {note}", used
