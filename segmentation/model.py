"""Train a segmentation and assign named segments.

A `Segmentation` is the fitted pipeline (WeightedScaler, then KMeans or a GaussianMixture)
plus its card: the feature spec it reads and, per cluster, a human name and description.
Training fits on a uniform sample (about a million rows is plenty for centroids) and then
assigns every row in batches for the sizes. Assignment encodes and scores blocks of rows
on every core (KMeans folded into one nearest-centroid matmul) and gathers names, never a
loop over customers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import polars as pl

from segmentation.baseline import FeatureBaseline, baseline
from segmentation.features import (
    DEFAULT_SPEC,
    Encoder,
    Feature,
    FeatureSpec,
    Matrix,
    check_dtypes,
    matrix_batches,
    resolve_spec,
    sample_matrix,
    source_rows,
    without_objectors,
)
from segmentation.ksearch import (
    KScore,
    choose_k,
    distinct_patterns,
    fit_without_empty,
    silhouette,
)
from segmentation.matching import MAX_DISTANCE, match_clusters, shared_space_distances
from segmentation.naming import describe, name_clusters
from segmentation.profiles import UNSEGMENTED, UNSEGMENTED_DESCRIPTION, objection

__all__ = ["Algorithm", "ModelCard", "SegmentInfo", "Segmentation", "fingerprint", "train"]

Progress = Callable[[str], None]
"""Told each phase of a long job, in words."""
Advance = Callable[[int, int], None]
"""Told (rows done, rows in all) while every row is assigned: drives a progress bar."""
Algorithm = Literal["kmeans", "gmm"]

K_RANGE = range(3, 9)
PARALLEL_FROM = 200_000  # below this, one thread: OpenMP start-up and spinning cost more
BLOCK_ROWS = 32_768  # rows encoded and scored at once: features and scores stay in cache


def _cores() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@cache
def _blas_controller() -> Any:
    """One threadpoolctl controller: building one scans the loaded libraries (~5 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class SegmentInfo(msgspec.Struct, frozen=True, kw_only=True):
    cluster: int
    name: str
    description: str
    size: int
    zscores: dict[str, float]
    renamed: bool = False  # name or description set by an analyst
    carried: bool = False  # name taken over from the parent version


class ModelCard(msgspec.Struct, frozen=True, kw_only=True):
    """What a model is, in JSON next to its file: enough to trust, compare and explain it."""

    version: str
    created_at: datetime
    spec: FeatureSpec
    algorithm: Algorithm = "kmeans"
    k: int
    rows: int  # profiles the model learned from and sized its segments on
    objectors: int = 0  # profiles left out: the customer objected to profiling
    sample_rows: int
    data_fingerprint: str
    source: str
    silhouette: float
    inertia: float
    k_search: list[KScore] = []  # each k tried and its silhouette on the search subsample
    k_rule: str = ""  # how k was chosen, and any segment dropped for being empty, in words
    seed: int
    segments: list[SegmentInfo]
    library_versions: dict[str, str]
    parent: str | None = None
    vanished: list[str] = []
    baseline: list[FeatureBaseline] = []
    revision: int = 0  # bumped by every rename, so a running server notices

    @property
    def features(self) -> list[Feature]:
        return self.spec.features

    def segment(self, name: str) -> SegmentInfo:
        for s in self.segments:
            if s.name == name:
                return s
        raise LookupError(f"segmentation {self.version} has no segment {name!r}")


class Later:
    """A pipeline still in its file: `Segmentation` reads it on first use."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self.load = load


class Segmentation:
    """A trained segmentation: its card and its fitted pipeline (scikit-learn's
    Pipeline(WeightedScaler, KMeans | GaussianMixture)), which may be `Later`: read when
    a profile first has to go through it (see segmentation.assigned)."""

    def __init__(self, pipeline: Any, card: ModelCard) -> None:
        self._pipeline, self.card = pipeline, card

    @property
    def pipeline(self) -> Any:
        if isinstance(self._pipeline, Later):
            self._pipeline = self._pipeline.load()
        return self._pipeline

    def predict(self, matrix: Matrix) -> npt.NDArray[np.int32]:
        """Cluster index of each feature-matrix row."""
        clusters: npt.NDArray[np.int32] = self.pipeline.predict(matrix).astype(np.int32)
        return clusters

    def predict_frame(self, profiles: pl.DataFrame) -> npt.NDArray[np.int32]:
        """Cluster index of each profile: what `predict(feature_matrix(...))` answers, faster.

        KMeans models are folded into one nearest-centroid rule on the unscaled features
        and run over blocks of rows on every core; the few near ties go to the pipeline.
        GaussianMixture models take the pipeline's own path.
        """
        from segmentation.estimators import FoldedKMeans

        spec = self.card.spec
        check_dtypes(spec, profiles.schema)
        encoder = Encoder(profiles, spec)
        folded = FoldedKMeans.of(self.pipeline)
        if folded is None:
            return self.predict(encoder.transposed().T)
        clusters = np.empty(encoder.rows, dtype=np.int32)

        def block(start: int) -> tuple[npt.NDArray[np.intp], Matrix]:
            transposed = encoder.transposed(start, start + BLOCK_ROWS)
            rows = np.flatnonzero(folded.nearest(transposed, clusters[start : start + BLOCK_ROWS]))
            return start + rows, transposed[:, rows].T

        starts = range(0, encoder.rows, BLOCK_ROWS)
        workers = min(_cores(), len(starts))
        with _blas_controller().limit(limits=1, user_api="blas"):  # blocks are small
            if workers > 1:
                with ThreadPoolExecutor(workers) as pool:
                    blocks = list(pool.map(block, starts))
            else:
                blocks = [block(start) for start in starts]
        unsure = [b for b in blocks if len(b[0])]
        if unsure:
            rows = np.concatenate([r for r, _ in unsure])
            clusters[rows] = self.predict(np.concatenate([m for _, m in unsure]))
        return clusters

    def clusters(self, profiles: pl.DataFrame) -> pl.Series:
        """Each profile's cluster; null for customers who objected to profiling
        (`objects_to_profiling`), who are not run through the model at all."""
        objects = profiles.select(objection(profiles.schema)).to_series()
        if not objects.any():
            return pl.Series("cluster", self.predict_frame(profiles), pl.Int32)
        clusters = pl.repeat(None, profiles.height, dtype=pl.Int32, eager=True).alias("cluster")
        rows = (~objects).arg_true()
        if len(rows):
            found = pl.Series(self.predict_frame(profiles.filter(~objects)), dtype=pl.Int32)
            clusters = clusters.scatter(rows, found)
        return clusters

    def assign(self, profiles: pl.DataFrame, clusters: pl.Series | None = None) -> pl.DataFrame:
        """`profiles` plus (or with fresh) `segment` and `segment_description` columns of
        their `clusters` (by default worked out now); a null cluster is the `unsegmented`
        segment."""
        clusters = self.clusters(profiles) if clusters is None else clusters
        by_cluster = sorted(self.card.segments, key=lambda s: s.cluster)
        names = pl.Series("segment", [s.name for s in by_cluster], dtype=pl.String)
        descriptions = pl.Series(
            "segment_description", [s.description for s in by_cluster], dtype=pl.String
        )
        # as expressions, so polars gathers the two columns in parallel
        return profiles.with_columns(
            pl.lit(names).gather(clusters).fill_null(UNSEGMENTED),
            pl.lit(descriptions).gather(clusters).fill_null(UNSEGMENTED_DESCRIPTION),
        )

    def with_card(self, card: ModelCard) -> Segmentation:
        return Segmentation(self._pipeline, card)


def fingerprint(profiles: pl.DataFrame | Path) -> str:
    """A stable digest of the training data: row hashes of a frame, bytes of files."""
    digest = hashlib.sha256()
    if isinstance(profiles, pl.DataFrame):
        digest.update(profiles.hash_rows(seed=0).to_numpy().tobytes())
    else:
        files = [profiles] if profiles.is_file() else sorted(profiles.parent.glob(profiles.name))
        for path in files:
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    digest.update(block)
    return f"sha256:{digest.hexdigest()[:32]}"


def _inertia(scaled: Matrix, labels: npt.NDArray[Any], centers: npt.NDArray[Any]) -> float:
    return float(((scaled - centers[labels]) ** 2).sum(dtype=np.float64))


def _segments(
    pipeline: Any,
    spec: FeatureSpec,
    sizes: npt.NDArray[np.int64],
    parent: Segmentation | None,
    max_distance: float,
) -> tuple[list[SegmentInfo], list[str]]:
    """Name every cluster (carrying names over from `parent`); list vanished names."""
    from segmentation.estimators import centers

    columns = [c for f in spec.features for c in _naming_columns(f)]
    weights = np.asarray(spec.weights())
    z = np.asarray(centers(pipeline), dtype=np.float64) / weights
    carried: dict[int, SegmentInfo] = {}
    vanished: list[str] = []
    taken: frozenset[str] = frozenset()
    if parent is not None:
        distances = shared_space_distances(
            pipeline, spec.outputs(), parent.pipeline, parent.card.spec.outputs()
        )
        by_cluster = {s.cluster: s for s in parent.card.segments}
        carried = {m.new: by_cluster[m.parent] for m in match_clusters(distances, max_distance)}
        kept = {s.name for s in carried.values()}
        vanished = [s.name for s in parent.card.segments if s.name not in kept]
        taken = frozenset(by_cluster[c].name for c in by_cluster)
    fresh = [i for i in range(len(z)) if i not in carried]
    new_names = dict(zip(fresh, name_clusters(z[fresh], columns, taken), strict=True))
    segments = []
    for i in range(len(z)):
        zscores = {c: round(float(v), 3) for c, v in zip(spec.outputs(), z[i], strict=True)}
        old = carried.get(i)
        if old is None:
            name, description = new_names[i]
            renamed = is_carried = False
        else:
            name, renamed, is_carried = old.name, old.renamed, True
            description = old.description if old.renamed else describe(z[i], columns)
        segments.append(
            SegmentInfo(
                cluster=i,
                name=name,
                description=description,
                size=int(sizes[i]),
                zscores=zscores,
                renamed=renamed,
                carried=is_carried,
            )
        )
    return segments, vanished


def _naming_columns(f: Feature) -> list[str]:
    """Archetypes and phrases speak of profile columns; one-hot outputs keep their own."""
    return f.outputs() if f.transform == "onehot" else [f.column]


def train(
    profiles: pl.DataFrame | Path,
    *,
    version: str,
    k: int | None = None,
    seed: int = 7,
    spec: FeatureSpec | None = None,
    features: Sequence[Feature] | None = None,
    algorithm: Algorithm = "kmeans",
    k_range: range = K_RANGE,
    sample_rows: int = 1_000_000,
    batch_rows: int = 1_000_000,
    parent: Segmentation | None = None,
    max_match_distance: float = MAX_DISTANCE,
    progress: Progress = lambda _msg: None,
    advance: Advance | None = None,
) -> Segmentation:
    """Fit on a uniform sample of `profiles` (a frame or Parquet path); k by `choose_k`.

    With `parent` (normally the active version), clusters are matched to the parent's and
    keep their names. The same data, spec and seed give the same model and names. Customers
    who objected to profiling are left out of everything learned: the card counts them.
    """
    import sklearn
    from threadpoolctl import threadpool_limits

    from segmentation.estimators import centers

    if features is not None and spec is not None:
        raise ValueError("give a spec or features, not both")
    data = without_objectors(profiles)
    rows = source_rows(data)
    objectors = source_rows(profiles) - rows if data is not profiles else 0
    # Below PARALLEL_FROM rows one thread is faster: OpenMP start-up and spinning dominate.
    with threadpool_limits(limits=1 if rows < PARALLEL_FROM else None):
        spec = resolve_spec(
            spec or (FeatureSpec(features=list(features)) if features else DEFAULT_SPEC), data
        )
        if rows < 10:
            raise ValueError(f"need at least 10 profiles to train, got {rows}")
        if objectors:
            progress(f"leaving out {objectors:,} customers who objected to profiling")
        progress(
            f"sampling {sample_rows:,} of {rows:,} profiles"
            if rows > sample_rows
            else f"reading {rows:,} profiles"
        )
        sample = sample_matrix(data, spec, sample_rows, seed)
        scores: list[KScore] = []
        if k is None:
            choice = choose_k(sample, spec.weights(), algorithm, k_range, seed, progress)
            k, scores, rule = choice.k, choice.scores, choice.rule
        else:
            rule = f"k={k} as asked"
            patterns = distinct_patterns(sample, k)
            if patterns is not None and patterns < k:
                rule += f"; only {patterns} distinct profile patterns, so k={patterns}"
                k = patterns
                progress(rule)
        if not 1 <= k < len(sample):
            raise ValueError(f"k must be between 1 and {len(sample) - 1}, got {k}")
        pipeline, labels, rule = fit_without_empty(
            sample, spec.weights(), algorithm, k, seed, rule, progress
        )
        k = len(centers(pipeline))
        scaled = pipeline[:-1].transform(sample)
        if len(sample) == rows:
            sizes = np.bincount(labels, minlength=k)
        else:
            progress(f"assigning all {rows:,} profiles")
            sizes, done = np.zeros(k, dtype=np.int64), 0
            for batch in matrix_batches(data, spec, batch_rows):
                sizes += np.bincount(pipeline.predict(batch), minlength=k)
                done += len(batch)
                if advance is not None:
                    advance(done, rows)
        segments, vanished = _segments(pipeline, spec, sizes, parent, max_match_distance)
        card = ModelCard(
            version=version,
            created_at=datetime.now(UTC),
            spec=spec,
            algorithm=algorithm,
            k=k,
            rows=rows,
            objectors=objectors,
            sample_rows=len(sample),
            data_fingerprint=fingerprint(profiles),
            source="frame" if isinstance(profiles, pl.DataFrame) else str(Path(profiles)),
            silhouette=round(silhouette(scaled, labels, seed), 4),
            inertia=round(_inertia(scaled, labels, centers(pipeline)), 3),
            k_search=scores,
            k_rule=rule,
            seed=seed,
            segments=segments,
            library_versions={
                "scikit-learn": sklearn.__version__,
                "polars": pl.__version__,
                "numpy": np.__version__,
            },
            parent=parent.card.version if parent is not None else None,
            vanished=vanished,
            baseline=baseline(sample, spec.outputs()),
        )
        return Segmentation(pipeline=pipeline, card=card)
