"""scikit-learn parts of a segmentation pipeline (imported only when a model is used).

`WeightedScaler` standardizes each column and multiplies it by the spec's weight, in one
float32 pass; it is the "shared standardized feature space" in which clusters of two
versions are compared. It follows the estimator contract so skops can save it and
`parametrize_with_checks` can hold it to sklearn's own checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["FoldedKMeans", "WeightedScaler", "centers", "make_pipeline"]

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
        # Features are scaled to unit variance, but a one-hot column can be constant
        # inside a cluster: a covariance floor of 1e-3 keeps such clusters fittable.
        cluster = GaussianMixture(n_components=k, n_init=2, random_state=seed, reg_covar=1e-3)
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


@dataclass(frozen=True)
class FoldedKMeans:
    """A fitted WeightedScaler + KMeans as one nearest-centroid rule on unscaled features.

    With s = (x - mean) * factor, ||s - c||^2 = ||s||^2 - 2 x.(factor*c) + 2 mean.(factor*c)
    + ||c||^2, and ||s||^2 is the same for every centroid; so the nearest centroid is the
    argmin over k of x.w_k + b_k: one small matmul per block of rows, no scaled copy.
    In float32 that sum is rounded differently from the pipeline's; rows whose two best
    scores are closer than a bound on both rounding errors are reported as unsure, and
    the caller asks the pipeline about them, so labels stay identical to `predict`.
    """

    weights: Array  # (k, d) float32: -2 * factor * centre
    bias: Array  # (k, 1) float32: ||centre||^2 + 2 mean . (factor * centre)
    abs_weights: Array  # (k, d) float64, for the error bound
    abs_bias: Array  # (k,) float64
    abs_centers: Array  # (k, d) float64
    center_norms: Array  # (k,) float64
    abs_mean: Array  # (d,) float64
    abs_factor: Array  # (d,) float64
    slack: float = 4.0  # x2 because two scores are compared, x2 to spare

    @classmethod
    def of(cls, pipeline: Any) -> FoldedKMeans | None:
        """The folded rule of a WeightedScaler + KMeans pipeline; None for other models."""
        scaler, cluster = pipeline.steps[0][1], pipeline.steps[-1][1]
        if not isinstance(scaler, WeightedScaler) or not hasattr(cluster, "cluster_centers_"):
            return None
        check_is_fitted(scaler)
        mean = np.asarray(scaler.mean_, dtype=np.float64)
        factor = np.asarray(scaler.weights_ / scaler.scale_, dtype=np.float64)
        centers = np.asarray(cluster.cluster_centers_, dtype=np.float64)
        folded = centers * factor
        bias = (centers**2).sum(axis=1) + 2.0 * folded @ mean
        return cls(
            weights=(-2.0 * folded).astype(np.float32),
            bias=bias.astype(np.float32)[:, None],
            abs_weights=np.abs(2.0 * folded),
            abs_bias=np.abs(bias),
            abs_centers=np.abs(centers),
            center_norms=(centers**2).sum(axis=1),
            abs_mean=np.abs(mean),
            abs_factor=np.abs(factor),
        )

    def tolerance(self, transposed: Array) -> float:
        """Score gap below which float32 rounding (ours or the pipeline's) may decide.

        Standard bounds for float32 dot products of length d, taken at the block's largest
        feature magnitudes: the folded scores, and the pipeline's scaling then distances.
        """
        unit = 2.0**-24
        gamma = (transposed.shape[0] + 4) * unit
        reach = np.maximum(transposed.max(axis=1), -transposed.min(axis=1)).astype(np.float64)
        ours = gamma * (self.abs_weights @ reach + self.abs_bias)
        scaled = (reach + self.abs_mean) * self.abs_factor  # bound on |s|
        theirs = 6.0 * unit * (self.abs_centers @ scaled) + gamma * (
            2.0 * (self.abs_centers @ scaled) + self.center_norms
        )
        return float(self.slack * np.max(ours + theirs))

    def nearest(self, transposed: Array, out: npt.NDArray[np.int32]) -> npt.NDArray[np.bool_]:
        """Write the nearest centroid of each column of `transposed` (features x rows) to
        `out`; return which rows are unsure: a near tie, or a non-finite feature."""
        scores = self.weights @ transposed
        scores += self.bias
        threshold = scores.min(axis=0, initial=np.inf)
        threshold += self.tolerance(transposed)
        code = np.uint8 if len(scores) < 256 else np.uint16
        near = np.less_equal(scores, threshold).view(np.uint8).astype(code, copy=False)
        count = np.add.reduce(near, axis=0, dtype=code)  # 1 where the best is clear
        near *= np.arange(len(scores), dtype=code)[:, None]
        out[:] = np.add.reduce(near, axis=0, dtype=code)  # the index of that best
        unsure: npt.NDArray[np.bool_] = count != 1
        return unsure
