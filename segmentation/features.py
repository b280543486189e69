"""Profiles → the float32 matrix scikit-learn sees, in one columnar pass.

Every transform in the spec is a few numpy ufuncs over a whole column (or a block of rows),
so a million profiles become features without a Python loop per customer. Sources are a
frame in memory or Parquet on disk; files are read lazily: a uniform sample for fitting,
then fixed-size batches for assigning every row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import polars as pl

from segmentation.profiles import OBJECTION_COLUMN, objection
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
    "Encoder",
    "Feature",
    "FeatureError",
    "FeatureSpec",
    "Matrix",
    "Source",
    "as_spec",
    "check_dtypes",
    "feature_matrix",
    "matrix_batches",
    "resolve_spec",
    "sample_matrix",
    "source_rows",
    "without_objectors",
]

Matrix = npt.NDArray[np.float32]
Source = pl.DataFrame | pl.LazyFrame | Path
"""Profiles in memory, a lazy query, or a Parquet file (or glob) read lazily."""


def as_spec(features: FeatureSpec | Sequence[Feature]) -> FeatureSpec:
    return features if isinstance(features, FeatureSpec) else FeatureSpec(features=list(features))


def _frame(source: Source) -> pl.LazyFrame:
    if isinstance(source, pl.LazyFrame):
        return source
    return source.lazy() if isinstance(source, pl.DataFrame) else pl.scan_parquet(source)


def _schema(source: Source) -> pl.Schema:
    return source.schema if isinstance(source, pl.DataFrame) else _frame(source).collect_schema()


def source_rows(source: Source) -> int:
    if isinstance(source, pl.DataFrame):
        return source.height
    return int(_frame(source).select(pl.len()).collect().item())


def without_objectors(source: Source) -> Source:
    """The rows a model may learn from: customers who objected to profiling are left out.

    One filter over the whole source (lazy for files); a source without the column is
    returned as it is, so plain Parquet files keep their streaming path.
    """
    schema = _schema(source)
    if OBJECTION_COLUMN not in schema:
        return source
    keep = ~objection(schema)
    return source.filter(keep) if isinstance(source, pl.DataFrame) else _frame(source).filter(keep)


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


Fill = Callable[[int, int, Matrix], None]
"""Writes rows start:stop of one output column into a float32 vector."""

LOOKUP_MAX = 1 << 16
"""Integer log1p columns whose values stay below this are encoded by table lookup."""


class Encoder:
    """The spec compiled against one frame: any range of rows of its feature matrix, transposed.

    Every output is written as one contiguous float32 row of an `(outputs, rows)` buffer by
    numpy ufuncs reading the frame's own column buffers, so a block of rows is encoded
    without an intermediate frame and stays in cache for whatever consumes it next. NaN
    and null encode as 0 (after the transform); integer log1p columns are a table lookup.
    """

    def __init__(self, frame: pl.DataFrame, spec: FeatureSpec) -> None:
        self.rows = frame.height
        self._fills = [fill for f in spec.features for fill in _fills(f, frame[f.column])]

    @property
    def width(self) -> int:
        """Columns of the feature matrix (rows of the transposed blocks)."""
        return len(self._fills)

    def transposed(self, start: int = 0, stop: int | None = None) -> Matrix:
        """Rows `start:stop` of the feature matrix, transposed: shape (width, rows), C order."""
        stop = self.rows if stop is None else min(stop, self.rows)
        out: Matrix = np.empty((self.width, max(stop - start, 0)), dtype=np.float32)
        for fill, row in zip(self._fills, out, strict=True):
            fill(start, stop, row)
        return out


def _fills(f: Feature, series: pl.Series) -> list[Fill]:
    if f.transform == "onehot":
        categories = f.categories or []
        codes, labels = _codes(series, categories)
        return [_equals(codes, labels.index(c) if c in labels else -1) for c in categories]
    if f.transform == "ordinal":
        order = f.order or []
        codes, labels = _codes(series, order)
        ranks = [float(order.index(v)) if v in order else 0.0 for v in labels]
        return [_lookup(np.asarray(ranks, dtype=np.float32), codes)]
    return [_numeric(f, series)]


def _codes(series: pl.Series, categories: list[str]) -> tuple[npt.NDArray[Any], list[str | None]]:
    """Integer codes of the values and the label of each code; null gets a code of its own.

    Enum columns give their physical codes (no string is touched); others are matched
    against `categories` as strings, anything else sharing the "unknown" code.
    """
    dtype = series.dtype
    if isinstance(dtype, pl.Enum):
        labels: list[str | None] = [*dtype.categories, None]
        physical = series.to_physical()
        if physical.null_count():
            physical = physical.cast(pl.UInt32).fill_null(len(labels) - 1)
        return physical.to_numpy(), labels
    known = list(dict.fromkeys(categories))
    codes = (
        series.cast(pl.String)
        .replace_strict(known, range(len(known)), default=len(known), return_dtype=pl.UInt32)
        .fill_null(len(known))
    )
    return codes.to_numpy(), [*known, None]


def _equals(codes: npt.NDArray[Any], code: int) -> Fill:
    def fill(start: int, stop: int, out: Matrix) -> None:
        np.equal(codes[start:stop], code, out=out, casting="unsafe")

    return fill


def _lookup(table: Matrix, codes: npt.NDArray[Any]) -> Fill:
    def fill(start: int, stop: int, out: Matrix) -> None:
        np.take(table, codes[start:stop], out=out, mode="clip")

    return fill


def _numeric(f: Feature, series: pl.Series) -> Fill:
    dtype = series.dtype
    if not (dtype.is_integer() or dtype.is_float()) or series.null_count():
        series = series.cast(pl.Float64)  # booleans, decimals; null becomes NaN, then 0
    values: npt.NDArray[Any] = series.to_numpy()
    lower, upper = f.lower, f.upper
    bounded = lower is not None or upper is not None
    log1p = f.transform == "log1p"
    if log1p and not bounded and values.dtype.kind in "iu" and len(values):
        top = int(values.max())
        if top < LOOKUP_MAX:  # log(1 + max(x, 0)) of every value that occurs, computed once
            steps = np.arange(max(top, 0) + 1, dtype=np.float32)
            return _lookup(np.log(steps + np.float32(1.0)), values)
    nan = not log1p and values.dtype.kind == "f" and bool(np.isnan(values).any())

    def fill(start: int, stop: int, out: Matrix) -> None:
        np.copyto(out, values[start:stop], casting="unsafe")
        if bounded:
            np.clip(out, lower, upper, out=out)
        if log1p:  # log(1 + x) rather than log1p: cheaper, exact enough for x >= 0 in float32
            np.fmax(out, 0.0, out=out)  # fmax also turns NaN into 0
            out += 1.0
            np.log(out, out=out)
        elif nan:
            np.copyto(out, 0.0, where=np.isnan(out))

    return fill


def feature_matrix(profiles: pl.DataFrame, features: FeatureSpec | Sequence[Feature]) -> Matrix:
    """The float32 matrix scikit-learn sees, one row per profile, one column per output.

    Column-major (each feature contiguous): a transposed view of `Encoder.transposed()`.
    """
    spec = as_spec(features)
    if any(f.transform == "onehot" and f.categories is None for f in spec.features):
        spec = resolve_spec(spec, profiles)
    else:
        check_dtypes(spec, profiles.schema)
    return Encoder(profiles, spec).transposed().T


def sample_matrix(source: Source, spec: FeatureSpec, rows: int, seed: int) -> Matrix:
    """About `rows` uniformly drawn rows (all of them when there are fewer).

    Files are filtered by a seeded hash of the row number while streaming, so only the
    sample's feature columns are ever held in memory.
    """
    total = source_rows(source)
    if isinstance(source, pl.DataFrame):
        frame = source if total <= rows else source.sample(n=rows, seed=seed)
        return Encoder(frame, spec).transposed().T
    lazy = _frame(source)
    if total > rows:
        keep = pl.col("_row").hash(seed) % total < rows
        lazy = lazy.with_row_index("_row").filter(keep)
    frame = lazy.select(spec.columns()).collect(engine="streaming")
    return Encoder(frame, spec).transposed().T


def matrix_batches(source: Source, spec: FeatureSpec, batch_rows: int) -> Iterator[Matrix]:
    """The feature matrix of every row, `batch_rows` at a time, in source order."""
    total = source_rows(source)
    if isinstance(source, pl.DataFrame):
        encoder = Encoder(source, spec)
        for start in range(0, total, batch_rows):
            yield encoder.transposed(start, start + batch_rows).T
        return
    columns = spec.columns()
    for start in range(0, total, batch_rows):
        batch = _frame(source).slice(start, batch_rows).select(columns).collect()
        yield Encoder(batch, spec).transposed().T
