"""Profiles → the float32 matrix scikit-learn sees, in one columnar pass.

Every transform in the spec is a polars expression, so a million profiles become features
without a Python loop. Sources are a frame in memory or Parquet on disk; files are read
lazily: a uniform sample for fitting, then fixed-size batches for assigning every row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt
import polars as pl

from segmentation.spec import (
    DEFAULT_FEATURES,
    DEFAULT_SPEC,
    Feature,
    FeatureError,
    FeatureSpec,
)

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_SPEC",
    "Feature",
    "FeatureError",
    "FeatureSpec",
    "Matrix",
    "Source",
    "as_spec",
    "check_dtypes",
    "feature_exprs",
    "feature_matrix",
    "matrix_batches",
    "resolve_spec",
    "sample_matrix",
    "source_rows",
    "to_matrix",
]

Matrix = npt.NDArray[np.float32]
Source = pl.DataFrame | Path
"""Profiles in memory, or a Parquet file (or glob) read lazily."""


def as_spec(features: FeatureSpec | Sequence[Feature]) -> FeatureSpec:
    return features if isinstance(features, FeatureSpec) else FeatureSpec(features=list(features))


def _frame(source: Source) -> pl.LazyFrame:
    return source.lazy() if isinstance(source, pl.DataFrame) else pl.scan_parquet(source)


def _schema(source: Source) -> pl.Schema:
    return source.schema if isinstance(source, pl.DataFrame) else _frame(source).collect_schema()


def source_rows(source: Source) -> int:
    if isinstance(source, pl.DataFrame):
        return source.height
    return int(_frame(source).select(pl.len()).collect().item())


def resolve_spec(features: FeatureSpec | Sequence[Feature], source: Source) -> FeatureSpec:
    """Check the spec against the source and fix one-hot categories for good.

    Categories come from the column's Enum, else from its values (sorted), so the fitted
    model encodes every later frame the same way.
    """
    spec = as_spec(features)
    schema = _schema(source)
    check_dtypes(spec, schema)
    resolved: list[Feature] = []
    for f in spec.features:
        if f.transform == "onehot" and f.categories is None:
            dtype = schema[f.column]
            if isinstance(dtype, pl.Enum):
                categories = list(dtype.categories)
            else:
                values = _frame(source).select(pl.col(f.column).cast(pl.String).unique().sort())
                categories = [v for v in values.collect().to_series() if v is not None]
            if not categories:
                raise FeatureError(f"feature {f.column}: one-hot column has no values")
            f = msgspec.structs.replace(f, categories=categories)
        resolved.append(f)
    return FeatureSpec(
        features=resolved, protected=spec.protected, allow_protected=spec.allow_protected
    )


def check_dtypes(spec: FeatureSpec, schema: pl.Schema) -> None:
    """Refuse unknown columns and numeric transforms of non-numeric ones, naming them."""
    spec.check(list(schema.names()))
    for f in spec.features:
        dtype = schema[f.column]
        numeric = dtype.is_numeric() or dtype == pl.Boolean
        if f.transform in ("identity", "log1p", "clip") and not numeric:
            raise FeatureError(
                f"feature {f.column}: {f.transform} needs a numeric column, not {dtype}"
                " (use onehot or ordinal)"
            )


def _numeric(f: Feature) -> pl.Expr:
    col = pl.col(f.column).cast(pl.Float32)
    if f.lower is not None or f.upper is not None:
        col = col.clip(lower_bound=f.lower, upper_bound=f.upper)
    if f.transform == "log1p":
        # log(1 + x) rather than log1p: three times faster in polars, and exact enough
        # for counts and amounts (x >= 0) at float32 precision.
        col = (col.clip(lower_bound=0.0) + 1.0).log()
    return col.fill_null(0.0)


def feature_exprs(
    spec: FeatureSpec,
    schema: pl.Schema | None = None,
    affine: tuple[Sequence[float], Sequence[float]] | None = None,
) -> list[pl.Expr]:
    """One Float32 expression per matrix column, in `spec.outputs()` order.

    With the source `schema`, Enum columns are encoded from their integer codes (no string
    is materialized). `affine` = (shift, factor) per column folds a fitted scaler,
    `(x - shift) * factor`, into the same pass, so assignment makes no second matrix.
    """
    exprs = [e for f in spec.features for e in _exprs(f, schema)]
    if affine is None:
        return exprs
    shift, factor = affine
    return [
        ((e - float(m)) * float(f)).alias(name)
        for e, m, f, name in zip(exprs, shift, factor, spec.outputs(), strict=True)
    ]


def _exprs(f: Feature, schema: pl.Schema | None) -> list[pl.Expr]:
    dtype = schema.get(f.column) if schema is not None else None
    enum = list(dtype.categories) if isinstance(dtype, pl.Enum) else None
    if f.transform == "onehot":
        categories = f.categories or []
        if enum is not None:  # compare codes; a category the Enum lacks never matches
            code = pl.col(f.column).to_physical()
            hits = [code == enum.index(c) if c in enum else pl.lit(False) for c in categories]
        else:
            text = pl.col(f.column).cast(pl.String)
            hits = [text == c for c in categories]
        return [
            h.fill_null(False).cast(pl.Float32).alias(name)
            for h, name in zip(hits, f.outputs(), strict=True)
        ]
    if f.transform == "ordinal":
        order = f.order or []
        if enum is not None:  # rank of each Enum code, looked up by gather
            ranks = [float(order.index(c)) if c in order else None for c in enum]
            lookup = pl.Series(ranks, dtype=pl.Float32)
            rank = pl.lit(lookup).gather(pl.col(f.column).to_physical())
        else:
            rank = (
                pl.col(f.column)
                .cast(pl.String)
                .replace_strict(
                    order, list(range(len(order))), default=None, return_dtype=pl.Float32
                )
            )
        return [rank.fill_null(0.0).alias(f.name)]
    return [_numeric(f).alias(f.name)]


def to_matrix(frame: pl.DataFrame) -> Matrix:
    """Column-major float32 (each feature contiguous); NaN from the data becomes 0."""
    matrix: Matrix = frame.to_numpy().astype(np.float32, copy=False)
    if np.isnan(matrix).any():
        matrix = np.nan_to_num(matrix, nan=0.0, copy=not matrix.flags.writeable)
    return matrix


def feature_matrix(profiles: pl.DataFrame, features: FeatureSpec | Sequence[Feature]) -> Matrix:
    """The float32 matrix scikit-learn sees, one row per profile, one column per output."""
    spec = as_spec(features)
    if any(f.transform == "onehot" and f.categories is None for f in spec.features):
        spec = resolve_spec(spec, profiles)
    else:
        check_dtypes(spec, profiles.schema)
    return to_matrix(profiles.lazy().select(feature_exprs(spec, profiles.schema)).collect())


def sample_matrix(source: Source, spec: FeatureSpec, rows: int, seed: int) -> Matrix:
    """About `rows` uniformly drawn rows (all of them when there are fewer).

    Files are filtered by a seeded hash of the row number while streaming, so only the
    sample's feature columns are ever held in memory.
    """
    total = source_rows(source)
    if isinstance(source, pl.DataFrame):
        frame = source if total <= rows else source.sample(n=rows, seed=seed)
        return to_matrix(frame.select(feature_exprs(spec, source.schema)))
    lazy = _frame(source)
    if total > rows:
        keep = pl.col("_row").hash(seed) % total < rows
        lazy = lazy.with_row_index("_row").filter(keep)
    exprs = feature_exprs(spec, _schema(source))
    return to_matrix(lazy.select(exprs).collect(engine="streaming"))


def matrix_batches(source: Source, spec: FeatureSpec, batch_rows: int) -> Iterator[Matrix]:
    """The feature matrix of every row, `batch_rows` at a time, in source order."""
    total = source_rows(source)
    exprs = feature_exprs(spec, _schema(source))
    for start in range(0, total, batch_rows):
        if isinstance(source, pl.DataFrame):
            yield to_matrix(source.slice(start, batch_rows).select(exprs))
        else:
            yield to_matrix(_frame(source).slice(start, batch_rows).select(exprs).collect())
