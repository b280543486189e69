"""Train a segmentation (scaled features + KMeans) and assign named segments.

A `Segmentation` is the fitted pipeline plus its card: the features it reads and, per
cluster, a human name and description. Assignment is one `predict` over the feature matrix
and a lookup of names, never a loop over customers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import polars as pl

from segmentation.features import DEFAULT_FEATURES, Feature, feature_matrix
from segmentation.naming import name_clusters

Progress = Callable[[str], None]


class SegmentInfo(msgspec.Struct, frozen=True, kw_only=True):
    cluster: int
    name: str
    description: str
    size: int
    zscores: dict[str, float]


class ModelCard(msgspec.Struct, frozen=True, kw_only=True):
    """What a model is, in JSON next to its file: enough to trust, compare and explain it."""

    version: str
    created_at: datetime
    features: list[Feature]
    k: int
    rows: int
    data_fingerprint: str
    silhouette: float
    inertia: float
    seed: int
    segments: list[SegmentInfo]
    library_versions: dict[str, str]
    parent: str | None = None


@dataclass(frozen=True)
class Segmentation:
    pipeline: Any  # sklearn Pipeline(StandardScaler, KMeans)
    card: ModelCard

    def assign(self, profiles: pl.DataFrame) -> pl.DataFrame:
        """`profiles` plus `segment` and `segment_description` columns."""
        matrix = feature_matrix(profiles, tuple(self.card.features))
        clusters = self.pipeline.predict(matrix).astype(np.int32)
        names = pl.DataFrame(
            {
                "_cluster": [s.cluster for s in self.card.segments],
                "segment": [s.name for s in self.card.segments],
                "segment_description": [s.description for s in self.card.segments],
            },
            schema_overrides={"_cluster": pl.Int32},
        )
        return (
            profiles.with_columns(_cluster=pl.Series(clusters))
            .join(names, on="_cluster", how="left", maintain_order="left")
            .drop("_cluster")
        )


def fingerprint(profiles: pl.DataFrame) -> str:
    """A stable digest of the training rows (their hash, not their bytes on disk)."""
    digest = hashlib.sha256(profiles.hash_rows(seed=0).to_numpy().tobytes()).hexdigest()
    return f"sha256:{digest[:32]}"


def _choose_k(matrix: np.ndarray, ks: range, seed: int, progress: Progress) -> int:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    sample = matrix[rng.choice(len(matrix), size=min(len(matrix), 4000), replace=False)]
    best_k, best_score = ks[0], -1.0
    for k in ks:
        progress(f"trying k={k}")
        labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(sample)
        score = float(silhouette_score(sample, labels, sample_size=2000, random_state=seed))
        if score > best_score:
            best_k, best_score = k, score
    return best_k


def train(
    profiles: pl.DataFrame,
    *,
    version: str,
    k: int | None = None,
    seed: int = 7,
    features: tuple[Feature, ...] = DEFAULT_FEATURES,
    progress: Progress = lambda _msg: None,
) -> Segmentation:
    """Fit StandardScaler + KMeans; k by silhouette over 3..8 when not given."""
    import sklearn
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    matrix = feature_matrix(profiles, features)
    if len(matrix) < 10:
        raise ValueError(f"need at least 10 profiles to train, got {len(matrix)}")
    scaled = StandardScaler().fit_transform(matrix)
    if k is None:
        k = _choose_k(scaled, range(3, 9), seed, progress)
    progress(f"fitting k={k} on {len(matrix):,} profiles")
    pipeline = Pipeline(
        [("scale", StandardScaler()), ("kmeans", KMeans(n_clusters=k, n_init=4, random_state=seed))]
    )
    labels = pipeline.fit_predict(matrix)
    kmeans = pipeline.named_steps["kmeans"]
    inertia = float(kmeans.inertia_)
    del kmeans.labels_  # one label per training row: not part of the model
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(matrix), size=min(len(matrix), 4000), replace=False)
    silhouette = float(silhouette_score(scaled[idx], labels[idx])) if k > 1 else 0.0
    centroids_z = kmeans.cluster_centers_
    base_columns = [f.column for f in features]
    named = name_clusters(centroids_z, base_columns)
    sizes = np.bincount(labels, minlength=k)
    segments = [
        SegmentInfo(
            cluster=i,
            name=named[i][0],
            description=named[i][1],
            size=int(sizes[i]),
            zscores={
                c: round(float(z), 3) for c, z in zip(base_columns, centroids_z[i], strict=True)
            },
        )
        for i in range(k)
    ]
    card = ModelCard(
        version=version,
        created_at=datetime.now(UTC),
        features=list(features),
        k=k,
        rows=len(matrix),
        data_fingerprint=fingerprint(profiles),
        silhouette=round(silhouette, 4),
        inertia=round(inertia, 3),
        seed=seed,
        segments=segments,
        library_versions={"scikit-learn": sklearn.__version__, "polars": pl.__version__},
    )
    return Segmentation(pipeline=pipeline, card=card)
