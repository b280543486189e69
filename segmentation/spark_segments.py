"""Train on a Spark-drawn sample, then assign every customer on the executors.

Spark draws the training sample (seeded by customer id, the local path's size rule: about
`sample_rows` rows, all of them when there are fewer) and brings only its feature columns to
the driver; scikit-learn fits there exactly as `segmentation.model.train` does. Every
customer is then assigned on the executors with `mapInArrow`: the model is broadcast once
and each Arrow batch goes through `Segmentation.assign` (the same encoder and folded
centroids as the local path), so labels equal the local ones. Sizes are a Spark count;
the drift baseline is Spark's aggregation over every customer (`spark_baseline`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import polars as pl

from segmentation.features import DEFAULT_SPEC, FeatureSpec, check_dtypes, resolve_spec
from segmentation.model import Algorithm, Progress, Segmentation, train
from segmentation.profiles import OBJECTION_COLUMN, UNSEGMENTED
from segmentation.spark import spread
from segmentation.spark_baseline import baseline_on_spark, encode_on_spark
from segmentation.traits import SegmentTraits, round_traits, trait_columns

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "assign_on_spark",
    "read_profiles",
    "segment_sizes",
    "train_on_spark",
    "traits_on_spark",
]

SEGMENT_COLUMNS = ("segment", "segment_description")
_YES = ("true", "yes", "y", "1")


def read_profiles(spark: SparkSession, paths: Sequence[str | Path]) -> DataFrame:
    """Profile Parquet (files, folders, globs) as a Spark frame."""
    return spark.read.parquet(*[str(p) for p in paths])


def _objects(frame: DataFrame) -> Column:
    """Spark's reading of `segmentation.profiles.objection`: true, "yes", "1"… object."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if OBJECTION_COLUMN not in frame.columns:
        return F.lit(False)
    column = F.col(OBJECTION_COLUMN)
    if isinstance(frame.schema[OBJECTION_COLUMN].dataType, T.StringType):
        return F.coalesce(F.lower(F.trim(column)).isin(*_YES), F.lit(False))
    return F.coalesce(column.cast("boolean"), F.lit(False))


def _polars_schema(paths: Sequence[str | Path]) -> pl.Schema:
    """The files' own types (Enums included), from Parquet metadata only."""
    return pl.scan_parquet([str(p) for p in paths]).collect_schema()


def _resolve(spec: FeatureSpec, frame: DataFrame, schema: pl.Schema) -> FeatureSpec:
    """One-hot categories from the column's Enum, else its distinct values counted by Spark
    (sorted, as `resolve_spec` sorts them)."""
    check_dtypes(spec, schema)
    features = []
    for f in spec.features:
        enum = isinstance(schema[f.column], pl.Enum)
        if f.transform == "onehot" and f.categories is None and not enum:
            rows = frame.select(f.column).distinct().collect()
            found = sorted(str(r[0]) for r in rows if r[0] is not None)
            f = msgspec.structs.replace(f, categories=found or None)
        features.append(f)
    fixed = msgspec.structs.replace(spec, features=features)
    return resolve_spec(fixed, pl.DataFrame(schema=schema))


def _fingerprint(frame: DataFrame) -> str:
    """A digest of every row that does not depend on file layout or order (Spark-summed)."""
    from pyspark.sql import functions as F

    row = frame.select(
        F.count(F.lit(1)),
        F.sum(F.xxhash64(*frame.columns).cast("decimal(38,0)")),
    ).first()
    assert row is not None
    digest = hashlib.sha256(f"{row[0]}:{row[1]}".encode()).hexdigest()
    return f"spark-sha256:{digest[:32]}"


def _assign_batches(model: Any, columns: list[str]) -> Any:
    """The function each executor runs over its Arrow batches (model from the broadcast)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        segmentation: Segmentation = model.value
        for batch in batches:
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            assigned = segmentation.assign(frame)
            arrays = [batch.column(i) for i in range(batch.num_columns)]
            arrays += [assigned[c].to_arrow().cast(pa.string()) for c in SEGMENT_COLUMNS]
            yield pa.RecordBatch.from_arrays(arrays, names=[*columns, *SEGMENT_COLUMNS])

    return run


def assign_on_spark(spark: SparkSession, frame: DataFrame, model: Segmentation) -> DataFrame:
    """`frame` plus `segment` and `segment_description`, computed on the executors."""
    from pyspark.sql import types as T

    broadcast = spark.sparkContext.broadcast(model)
    schema = T.StructType(
        [*frame.schema.fields, *(T.StructField(c, T.StringType()) for c in SEGMENT_COLUMNS)]
    )
    return spread(frame).mapInArrow(_assign_batches(broadcast, frame.columns), schema)


def segment_sizes(assigned: DataFrame, model: Segmentation) -> np.ndarray[Any, Any]:
    """Customers per cluster, counted by Spark."""
    counts = {r["segment"]: int(r["count"]) for r in assigned.groupBy("segment").count().collect()}
    return np.array(
        [counts.get(s.name, 0) for s in sorted(model.card.segments, key=lambda s: s.cluster)],
        dtype=np.int64,
    )


def train_on_spark(
    spark: SparkSession,
    paths: Sequence[str | Path],
    *,
    version: str,
    k: int | None = None,
    seed: int = 7,
    spec: FeatureSpec | None = None,
    algorithm: Algorithm = "kmeans",
    sample_rows: int = 1_000_000,
    parent: Segmentation | None = None,
    progress: Progress = lambda _msg: None,
    assignments: str | Path | None = None,
) -> Segmentation:
    """`segmentation.model.train` with Spark doing the reading, sampling and assigning.

    The card counts every profile Spark read (`rows`, `objectors`), sizes segments by the
    executors' assignment, and keeps the drift baseline of every customer (a local training
    keeps its sample's: the same when the sample is everyone); with `assignments`, every
    customer's segment is written there as Parquet (customer_id, segment).
    """
    from pyspark.sql import functions as F

    everyone = read_profiles(spark, paths)
    schema = _polars_schema(paths)
    data = everyone.where(~_objects(everyone))
    total = everyone.count()
    rows = data.count()
    if rows < 10:
        raise ValueError(f"need at least 10 profiles to train, got {rows}")
    if total > rows:
        progress(f"leaving out {total - rows:,} customers who objected to profiling")
    resolved = _resolve(spec or DEFAULT_SPEC, data, schema)
    progress(f"sampling about {min(sample_rows, rows):,} of {rows:,} profiles on Spark")
    sampled = data
    if rows > sample_rows:
        keep = F.pmod(F.xxhash64(F.col("customer_id"), F.lit(seed)), F.lit(rows)) < sample_rows
        sampled = data.where(keep)
    table = sampled.select(*resolved.columns()).toArrow()
    sample = pl.from_arrow(table)
    assert isinstance(sample, pl.DataFrame)
    sample = sample.cast(
        {n: schema[n] for n in sample.columns if not isinstance(schema[n], pl.Enum)}
    )
    model = train(
        sample,
        version=version,
        k=k,
        seed=seed,
        spec=resolved,
        algorithm=algorithm,
        sample_rows=sample.height,
        parent=parent,
        progress=progress,
    )
    progress(f"assigning all {rows:,} profiles on Spark's executors")
    assigned = assign_on_spark(spark, data, model)
    if assignments is not None:
        assigned = assigned.select("customer_id", "segment")
        assigned.write.mode("overwrite").parquet(str(assignments))
        assigned = spark.read.parquet(str(assignments))
    sizes = segment_sizes(assigned, model)
    progress(f"measuring the drift baseline of all {rows:,} profiles on Spark")
    encoded = encode_on_spark(data, model.card.spec).persist()
    try:
        drift_baseline = baseline_on_spark(encoded, model.card.spec.outputs(), rows)
    finally:
        encoded.unpersist()
    card = model.card
    segments = [msgspec.structs.replace(s, size=int(sizes[s.cluster])) for s in card.segments]
    card = msgspec.structs.replace(
        card,
        rows=rows,
        objectors=total - rows,
        data_fingerprint=_fingerprint(everyone),
        source=", ".join(str(p) for p in paths),
        segments=segments,
        baseline=drift_baseline,
    )
    return model.with_card(card)


def traits_on_spark(
    spark: SparkSession, frame: DataFrame, schema: pl.Schema, model: Segmentation
) -> SegmentTraits:
    """`segmentation.traits.segment_traits` of the dataset as `model` segments it, with the
    executors assigning and Spark summarizing (means, and modes whose ties go to the lowest
    value), so personas resolve as over the profile book."""
    from pyspark.sql import functions as F

    how = trait_columns(pl.Schema({n: t for n, t in schema.items() if n in frame.columns}))
    summaries = [
        F.avg(F.col(n).cast("double")).alias(n)
        if kind == "mean"
        else F.mode(F.col(n).cast("string"), deterministic=True).alias(n)
        for n, kind in how.items()
    ]
    assigned = assign_on_spark(spark, frame, model).where(
        F.col("segment").isNotNull() & (F.col("segment") != UNSEGMENTED)
    )
    rows = assigned.groupBy("segment").agg(F.count(F.lit(1)).alias("size"), *summaries)
    out: SegmentTraits = {}
    for row in sorted(rows.collect(), key=lambda r: r["segment"]):
        values = row.asDict()
        name, traits = round_traits(values.pop("segment"), values)
        out[name] = traits
    return out
