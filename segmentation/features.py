"""Which profile columns feed segmentation, and how they are transformed.

Features are computed with polars expressions and handed to scikit-learn as one float
matrix, so a million profiles become features in one columnar pass.
"""

from __future__ import annotations

from typing import Literal

import msgspec
import numpy as np
import polars as pl

from segmentation.profiles import PROTECTED_COLUMNS


class Feature(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One model input: a profile column and a transform."""

    column: str
    transform: Literal["identity", "log1p"] = "identity"

    @property
    def name(self) -> str:
        return self.column if self.transform == "identity" else f"{self.transform}_{self.column}"


DEFAULT_FEATURES: tuple[Feature, ...] = (
    Feature(column="trips_12m", transform="log1p"),
    Feature(column="spend_12m", transform="log1p"),
    Feature(column="business_share"),
    Feature(column="avg_fare", transform="log1p"),
    Feature(column="duty_free_spend_12m", transform="log1p"),
    Feature(column="lounge_visits_12m", transform="log1p"),
    Feature(column="tenure_years"),
)


class FeatureError(ValueError):
    """A feature spec that cannot be used; the message names the column."""


def check_features(features: tuple[Feature, ...], columns: list[str]) -> None:
    for f in features:
        if f.column in PROTECTED_COLUMNS:
            raise FeatureError(f"feature {f.column}: protected attribute, not allowed")
        if f.column not in columns:
            raise FeatureError(f"feature {f.column}: no such profile column")


def _expr(f: Feature) -> pl.Expr:
    col = pl.col(f.column).cast(pl.Float64).fill_null(0.0)
    if f.transform == "log1p":
        col = col.clip(lower_bound=0.0).log1p()
    return col.alias(f.name)


def feature_matrix(profiles: pl.DataFrame, features: tuple[Feature, ...]) -> np.ndarray:
    """The float32 matrix scikit-learn sees, one row per profile, one column per feature."""
    check_features(features, profiles.columns)
    return profiles.select(_expr(f) for f in features).to_numpy().astype(np.float32, copy=False)
