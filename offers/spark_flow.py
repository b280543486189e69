"""Huge incidents on Spark: the same engine per partition, stock and budget over everyone.

`apply_on_spark` is `offers.flow.apply_update` with the deciding done on Spark's executors:
the ledger is read once on the driver (what this incident already gave, the customers'
other incidents for the caps, stock used today), and that, the compiled table, the policies,
the message book and the segmentation are broadcast once. Each partition of the profile
dataset then runs the engine's per-customer stages (`offers.decide.candidates`) with
`mapInArrow`; only the rows with a candidate perk come back (id, perk, value, cost, drop),
and the driver settles stock per airport and day and the budget over all of them with the
engine's own `settle_stock_and_budget`. The few rows that settling changed are broadcast
back and every partition finishes its decisions (`offers.decide.decide` with that
settlement). The driver records them under the incident's lock like any update, so an
update replayed writes nothing and decisions are the local engine's.

Between Python and Spark, frames travel as Arrow IPC bytes, so every polars type (Enums,
lists, zoned times) arrives as the engine made it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from offers.catalog import OfferTable
from offers.decide import StepContext, candidates, decide, settle_stock_and_budget
from offers.flow import Outcome, Parts, apply_update
from offers.incidents import Incident
from offers.messages import MessageBook
from segmentation.ids import id_hash
from segmentation.model import Segmentation
from segmentation.spark import spread

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkProfiles", "apply_on_spark", "read_profiles"]

_SETTLED = ("customer_id", "_drop", "charged_cost")
_PLAN_COLUMNS = ("customer_id", "timezone", "consent_marketing")
_FIXES = {
    "customer_id": pl.String,
    "_drop": pl.String,
    "charged_cost": pl.Float64,
    "_fixed": pl.Boolean,
}


@dataclass(frozen=True)
class SparkProfiles:
    """A profile dataset on Spark, its polars types (from the files), and the segmentation."""

    frame: DataFrame
    schema: pl.Schema
    model: Segmentation


def read_profiles(spark: SparkSession, path: str, model: Segmentation) -> SparkProfiles:
    """A Parquet profile dataset (file, folder or glob) for Spark, typed as its files say."""
    return SparkProfiles(
        frame=spark.read.parquet(path), schema=pl.scan_parquet(path).collect_schema(), model=model
    )


@dataclass(frozen=True)
class _Step:
    """What every partition needs, broadcast once."""

    schema: pl.Schema
    model: Segmentation
    history: pl.DataFrame
    recent: pl.DataFrame
    ctx: StepContext
    table: OfferTable
    book: MessageBook


def _ipc(frame: pl.DataFrame) -> bytes:
    """Compressed: decisions repeat their texts' wording, and every byte crosses to the driver."""
    out = io.BytesIO()
    frame.write_ipc(out, compression="zstd")
    return out.getvalue()


def _read_ipc(blobs: Sequence[bytes]) -> pl.DataFrame | None:
    """The partitions' frames as one; an Enum made per batch (the texts' shells) takes the
    union of the batches' categories."""
    frames = [pl.read_ipc(io.BytesIO(b)) for b in blobs]
    if not frames:
        return None
    union: dict[str, pl.Enum] = {}
    for name, dtype in frames[0].schema.items():
        kinds = [f.schema[name] for f in frames]
        if isinstance(dtype, pl.Enum) and len(set(kinds)) > 1:
            seen = (c for k in kinds if isinstance(k, pl.Enum) for c in k.categories)
            union[name] = pl.Enum(list(dict.fromkeys(seen)))
    casts = [pl.col(name).cast(dtype) for name, dtype in union.items()]
    return pl.concat([f.with_columns(casts) for f in frames])


def _customers(batch: pa.RecordBatch, step: _Step) -> pl.DataFrame:
    """One batch of profiles as the profile book holds them: typed, segmented, id-hashed."""
    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    frame = frame.cast({n: step.schema[n] for n in frame.columns if n in step.schema})
    return step.model.assign(frame).with_columns(id_hash(frame["customer_id"]))


def _blobs(out: Iterator[pl.DataFrame]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    for frame in out:
        yield pa.RecordBatch.from_arrays([pa.array([_ipc(frame)], pa.binary())], names=["ipc"])


def _offered(shared: Any) -> Any:
    """Per partition: the rows with a candidate perk, as stock and budget need them."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        step: _Step = shared.value

        def frames() -> Iterator[pl.DataFrame]:
            for batch in batches:
                found = candidates(
                    _customers(batch, step), step.history, step.recent, step.ctx, step.table
                )
                yield found.filter(pl.col("candidate").is_not_null()).select(
                    "customer_id", "candidate", "perk_value", "charged_cost", "_drop"
                )

        yield from _blobs(frames())

    return run


def _decisions(shared: Any, changed: Any) -> Any:
    """Per partition: the decisions, with stock and budget as the driver settled them."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        step: _Step = shared.value
        fixes: pl.DataFrame = changed.value

        def settle(frame: pl.DataFrame) -> pl.DataFrame:
            fixed = frame.join(
                fixes.rename({"_drop": "_d", "charged_cost": "_c"}),
                on="customer_id",
                how="left",
                maintain_order="left",
            )
            hit = pl.col("_fixed").fill_null(False)
            return fixed.with_columns(
                _drop=pl.when(hit).then(pl.col("_d")).otherwise(pl.col("_drop")),
                charged_cost=pl.when(hit).then(pl.col("_c")).otherwise(pl.col("charged_cost")),
            ).drop("_d", "_c", "_fixed")

        def frames() -> Iterator[pl.DataFrame]:
            for batch in batches:
                customers = _customers(batch, step)
                decided = decide(
                    customers,
                    step.history,
                    step.recent,
                    step.ctx,
                    step.table,
                    step.book,
                    settle=settle,
                )
                plan = customers.select(_PLAN_COLUMNS)
                yield decided.join(plan, on="customer_id", how="left", maintain_order="left")

        yield from _blobs(frames())

    return run


def _collect(frame: DataFrame) -> pl.DataFrame | None:
    return _read_ipc([row[0] for row in frame.collect()])


def _decider(spark: SparkSession, profiles: SparkProfiles, everyone: int | None) -> Any:
    """`everyone`: the dataset's row count when every profile is affected (no join then)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    blob = T.StructType([T.StructField("ipc", T.BinaryType())])

    def run(
        affected: list[str],
        history: pl.DataFrame,
        recent: pl.DataFrame,
        ctx: StepContext,
        table: OfferTable,
        book: MessageBook,
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        context = spark.sparkContext
        if everyone is not None and len(affected) == everyone:
            rows = profiles.frame  # the ledger adds nobody the dataset lacks
        else:
            ids = spark.createDataFrame(pl.DataFrame({"customer_id": affected}).to_arrow())
            small = len(affected) < 1_000_000
            rows = profiles.frame.join(F.broadcast(ids) if small else ids, "customer_id")
        rows = spread(rows).persist()
        step = _Step(profiles.schema, profiles.model, history, recent, ctx, table, book)
        shared = context.broadcast(step)
        try:
            offered = _collect(rows.mapInArrow(_offered(shared), blob))
            fixes = pl.DataFrame(schema=_FIXES)
            if offered is not None and offered.height:
                settled = settle_stock_and_budget(offered, ctx)
                fixes = (
                    settled.select(_SETTLED)
                    .join(offered.select(_SETTLED), on="customer_id", suffix="_before")
                    .filter(
                        pl.col("_drop").ne_missing(pl.col("_drop_before"))
                        | pl.col("charged_cost").ne_missing(pl.col("charged_cost_before"))
                    )
                    .select(*_SETTLED, _fixed=pl.lit(True))
                )
            changed = context.broadcast(fixes)
            decided = _collect(rows.mapInArrow(_decisions(shared, changed), blob))
        finally:
            rows.unpersist()
        if decided is None:  # nobody left to decide at this step
            nobody = profiles.model.assign(pl.DataFrame(schema=profiles.schema))
            none = decide(nobody, history, recent, ctx, table, book)
            return none, pl.DataFrame(schema={c: profiles.schema[c] for c in _PLAN_COLUMNS})
        return decided.drop(_PLAN_COLUMNS[1:]), decided.select(_PLAN_COLUMNS)

    return run


def apply_on_spark(
    spark: SparkSession,
    parts: Parts,
    profiles: SparkProfiles,
    incident: Incident,
    customer_ids: Sequence[str] | None,
    now: datetime,
    *,
    dry_run: bool = False,
    budget: float | None = None,
) -> Outcome:
    """`apply_update` deciding on Spark; `customer_ids` None: every profile of the dataset.

    `parts.table` must resolve personas against the dataset's segments (a runtime given
    `segmentation.spark_segments.traits_on_spark` of it), as a server resolves them against
    the profiles it serves."""
    everyone = None
    if customer_ids is None:
        ids_table = profiles.frame.select("customer_id").toArrow()
        customer_ids = pl.from_arrow(ids_table).to_series().to_list()  # type: ignore[union-attr]
        everyone = len(customer_ids)

    def unknown(ids: Sequence[str]) -> list[str]:
        if everyone is not None:
            return []  # the ids came from the dataset
        asked = spark.createDataFrame(pl.DataFrame({"customer_id": list(ids)}).to_arrow())
        missing = asked.join(profiles.frame.select("customer_id"), "customer_id", "left_anti")
        found = {r[0] for r in missing.collect()}
        return [i for i in ids if i in found]

    spark_parts = replace(parts, unknown_profiles=unknown, profile=None)
    return apply_update(
        spark_parts,
        incident,
        customer_ids,
        now,
        dry_run=dry_run,
        budget=budget,
        decider=_decider(spark, profiles, everyone),
    )
