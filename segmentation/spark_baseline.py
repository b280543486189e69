"""The drift baseline of a Spark training, as Spark aggregations over every customer.

`segmentation.baseline.baseline` takes a feature matrix in memory: its decile edges are
`np.quantile`'s (linear interpolation between order statistics) and its shares are counts
per bin. Here the executors encode each Arrow batch with the local path's encoder, and
Spark finds the same order statistics without sorting everyone or holding every distinct
value in one place: `percentile_approx` brackets each one, then one pass counts the rows
below each bracket and brings back only the few values inside it. A second pass counts
every customer per bin. The edges and shares are those `baseline` gives for the same
rows; only counts and a few thousand values per edge reach the driver.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import polars as pl

from segmentation.baseline import FeatureBaseline
from segmentation.features import FeatureSpec, feature_matrix
from segmentation.spark import spread

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

__all__ = ["QUANTILES", "baseline_on_spark", "encode_on_spark", "quantiles_on_spark"]

QUANTILES = np.linspace(0.1, 0.9, 9)
"""The deciles `segmentation.baseline.baseline` keeps."""
ACCURACY = 10_000
"""`percentile_approx`'s accuracy: a bracket holds about 6 / ACCURACY of the rows."""


def _column(j: int) -> str:
    return f"f{j}"


def _encode_batches(spec: FeatureSpec) -> Any:
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        for batch in batches:
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            matrix = feature_matrix(frame, spec)
            arrays = [pa.array(matrix[:, j]) for j in range(matrix.shape[1])]
            yield pa.RecordBatch.from_arrays(arrays, names=[_column(j) for j in range(len(arrays))])

    return run


def encode_on_spark(frame: DataFrame, spec: FeatureSpec) -> DataFrame:
    """The float32 matrix scikit-learn sees, one column `f<j>` per output of `spec`."""
    from pyspark.sql import types as T

    schema = T.StructType(
        [T.StructField(_column(j), T.FloatType(), False) for j in range(len(spec.outputs()))]
    )
    return spread(frame.select(*spec.columns())).mapInArrow(_encode_batches(spec), schema)


Ranks = npt.NDArray[np.intp]


def _virtual(rows: int) -> tuple[npt.NDArray[np.float64], Ranks, Ranks]:
    """numpy's "linear" method: where each decile falls among `rows` sorted values, and the
    0-based ranks of the two values it lies between (numpy's own arithmetic, so the same
    interpolation weights)."""
    virtual = (rows - 1) * QUANTILES
    previous = np.floor(virtual)
    following = previous + 1
    last = virtual >= rows - 1
    previous[last] = following[last] = rows - 1
    return virtual, previous.astype(np.intp), following.astype(np.intp)


def _lerp(a: npt.NDArray[Any], b: npt.NDArray[Any], t: npt.NDArray[np.float64]) -> Any:
    """numpy's interpolation between two order statistics (float32 in, float64 out)."""
    diff = b - a
    out = np.add(a, diff * t)
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5, casting="unsafe")
    return out


def _order_statistics(
    encoded: DataFrame, width: int, rows: int, pairs: list[tuple[int, int]], accuracy: int
) -> dict[tuple[int, int], float]:
    """The values at each pair of neighbouring 0-based ranks of each column, exactly.

    `percentile_approx` brackets each pair (widened until the bracket holds it); one pass
    then counts the rows below, at either end of, and inside each bracket, and brings back
    the values strictly inside (a few per 10,000 rows, however many rows share a value)."""
    from pyspark.sql import functions as F

    found: dict[tuple[int, int], float] = {}
    margin = 3.0 / accuracy
    todo = [(j, pair) for j in range(width) for pair in pairs]
    while todo:
        if margin >= 1.0:
            margin = 2.0  # the whole column: the bracket is every value
        percentages = [
            [max((p + 0.5) / rows - margin, 0.0), min((f + 0.5) / rows + margin, 1.0)]
            for p, f in pairs
        ]
        flat = [q for pq in percentages for q in pq]
        approx = encoded.select(
            *(F.percentile_approx(_column(j), flat, accuracy).alias(f"b{j}") for j in range(width))
        ).first()
        assert approx is not None
        brackets = {
            (j, pair): (float(approx[f"b{j}"][2 * k]), float(approx[f"b{j}"][2 * k + 1]))
            for j in range(width)
            for k, pair in enumerate(pairs)
        }
        sums = []
        for i, key in enumerate(todo):
            lo, hi = brackets[key]
            x = F.col(_column(key[0]))
            sums += [
                F.count_if(x < F.lit(lo)).alias(f"below{i}"),
                F.count_if(x == F.lit(lo)).alias(f"low{i}"),
                F.count_if(x == F.lit(hi)).alias(f"high{i}"),
                F.collect_list(F.when((x > F.lit(lo)) & (x < F.lit(hi)), x)).alias(f"in{i}"),
            ]
        counts = encoded.select(*sums).first()
        assert counts is not None
        missed = []
        for i, key in enumerate(todo):
            (j, (p, f)), (lo, hi) = key, brackets[key]
            below = counts[f"below{i}"]
            values = [lo] * counts[f"low{i}"] + sorted(counts[f"in{i}"])
            values += [hi] * counts[f"high{i}"] if hi != lo else []
            if below <= p and f < below + len(values):
                found[(j, p)], found[(j, f)] = values[p - below], values[f - below]
            else:
                missed.append(key)
        todo, margin = missed, margin * 10
    return found


def quantiles_on_spark(
    encoded: DataFrame, width: int, rows: int, *, accuracy: int = ACCURACY
) -> npt.NDArray[np.float64]:
    """`np.quantile(matrix, QUANTILES, axis=0)` of the encoded columns (9 x width)."""
    virtual, previous, following = _virtual(rows)
    pairs = sorted({(int(p), int(f)) for p, f in zip(previous, following, strict=True)})
    values = _order_statistics(encoded, width, rows, pairs, accuracy)
    out = np.empty((len(QUANTILES), width), dtype=np.float64)
    gamma = virtual - previous
    for j in range(width):
        a = np.array([values[(j, int(r))] for r in previous], dtype=np.float32)
        b = np.array([values[(j, int(r))] for r in following], dtype=np.float32)
        out[:, j] = _lerp(a, b, gamma)
    return out


def baseline_on_spark(
    encoded: DataFrame, names: list[str], rows: int, *, accuracy: int = ACCURACY
) -> list[FeatureBaseline]:
    """`segmentation.baseline.baseline` of every encoded row: decile edges (duplicates
    merged) and each bin's share, counted by Spark."""
    from pyspark.sql import functions as F

    deciles = quantiles_on_spark(encoded, len(names), rows, accuracy=accuracy)
    edges = [np.unique(deciles[:, j]) for j in range(len(names))]
    counts = []
    for j, e in enumerate(edges):
        x = F.col(_column(j))
        bounds = [None, *e.tolist(), None]  # bin i holds e[i-1] <= x < e[i], as searchsorted
        for i in range(len(e) + 1):
            lo, hi = bounds[i], bounds[i + 1]
            test = F.lit(True)
            if lo is not None:
                test = test & (x >= F.lit(lo))
            if hi is not None:
                test = test & (x < F.lit(hi))
            counts.append(F.count_if(test).alias(f"c{j}_{i}"))
    row = encoded.select(*counts).first()
    assert row is not None
    result = []
    for j, (name, e) in enumerate(zip(names, edges, strict=True)):
        bins = np.array([row[f"c{j}_{i}"] for i in range(len(e) + 1)], dtype=np.int64)
        shares = bins / max(rows, 1)
        result.append(
            FeatureBaseline(
                name=name,
                edges=[float(v) for v in e],
                shares=[round(float(s), 6) for s in shares],
            )
        )
    return result
