"""scikit-learn parts of a segmentation pipeline (imported only when a model is used).

`WeightedScaler` standardizes each column and multiplies it by the spec's weight, in one
float32 pass; it is the "shared standardized feature space" in which clusters of two
versions are compared. It follows the estimator contract so skops can save it and
`parametrize_with_checks` can hold it to sklearn's own checks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["WeightedScaler", "centers", "make_pipeline"]

Array = npt.NDArray[Any]


class WeightedScaler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Standardize columns (zero mean, unit variance), then multiply column j by weights[j].

    Constant columns keep scale 1, like StandardScaler; `weights=None` means all ones.
    """

    def __init__(self, weights: tuple[float, ...] | None = None) -> None:
        self.weights = weights

    def fit(self, X: Array, y: object = None) -> WeightedScaler:
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=True)
        n = X.shape[1]
        weights = np.ones(n) if self.weights is None else np.asarray(self.weights, float)
        if weights.shape != (n,):
            raise ValueError(f"weights has {weights.size} values for {n} features")
        if np.any(weights <= 0) or not np.all(np.isfinite(weights)):
            raise ValueError("weights must be positive and finite")
        self.mean_ = X.mean(axis=0, dtype=np.float64)
        std = X.std(axis=0, dtype=np.float64)
        self.scale_ = np.where(std > 1e-12 * np.maximum(1.0, np.abs(self.mean_)), std, 1.0)
        self.weights_ = weights
        return self

    def transform(self, X: Array) -> Array:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        factor = (self.weights_ / self.scale_).astype(X.dtype)
        out: Array = np.empty(X.shape, dtype=X.dtype, order="C")  # what the clusterer wants
        np.subtract(X, self.mean_.astype(X.dtype), out=out)
        out *= factor
        return out

    def inverse_transform(self, X: Array) -> Array:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        out: Array = X * (self.scale_ / self.weights_).astype(X.dtype) + self.mean_.astype(X.dtype)
        return out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def make_pipeline(weights: list[float], algorithm: str, k: int, seed: int) -> Any:
    """WeightedScaler then KMeans (or a full-covariance GaussianMixture)."""
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture
    from sklearn.pipeline import Pipeline

    cluster: Any
    if algorithm == "kmeans":
        cluster = KMeans(n_clusters=k, n_init=4, random_state=seed)
    elif algorithm == "gmm":
        cluster = GaussianMixture(n_components=k, n_init=2, random_state=seed)
    else:
        raise ValueError(f"unknown model {algorithm!r}: use kmeans or gmm")
    return Pipeline([("scale", WeightedScaler(tuple(weights))), ("cluster", cluster)])


def centers(pipeline: Any) -> Array:
    """Cluster centres in the pipeline's scaled space, one row per cluster."""
    cluster = pipeline.steps[-1][1]
    if hasattr(cluster, "cluster_centers_"):
        kmeans_centers: Array = cluster.cluster_centers_
        return kmeans_centers
    means: Array = cluster.means_
    return means
