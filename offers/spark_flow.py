"""Huge incidents on Spark: the same engine per partition, stock and budget over everyone.

`apply_on_spark` is `offers.flow.apply_update` with the deciding done on Spark's executors:
the ledger is read once on the driver (what this incident already gave, the customers'
other incidents for the caps, stock used today), and that, the compiled table, the policies,
the message book and the segmentation are broadcast once. Each partition of the profile
dataset then runs the engine's per-customer stages (`offers.decide.candidates`) with
`mapInArrow`; only the rows with a candidate perk come back (id, perk, value, cost, drop),
and the driver settles stock per airport and day and the budget over all of them as a
chunked update does (`offers.settling.fixes`). The few rows that settling changed are
broadcast back and every partition finishes its decisions (`offers.decide.decide` with
that settlement, `offers.settling.settle_with`). The driver records them under the
incident's lock like any update, so an update replayed writes nothing and decisions are the
local engine's.

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
from offers.decide import StepContext, candidates, decide
from offers.flow import REFRESH_STATISTICS_AFTER, Outcome, Parts, apply_update
from offers.followup_plan import PLAN_COLUMNS
from offers.incidents import Incident
from offers.ledger import DECISION_SCHEMA, Tx
from offers.ledger.staging import Staging, ledger_rows
from offers.messages import MessageBook
from offers.settling import fixes, offered, settle_with
from segmentation.ids import id_hash
from segmentation.model import Segmentation
from segmentation.spark import spread

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkProfiles", "apply_on_spark", "read_profiles"]


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
                customers = _customers(batch, step)
                yield offered(
                    candidates(customers, step.history, step.recent, step.ctx, step.table)
                )

        yield from _blobs(frames())

    return run


def _decided(
    step: _Step, changed: pl.DataFrame, batches: Iterator[pa.RecordBatch]
) -> Iterator[pl.DataFrame]:
    """A partition's decisions, with stock and budget as the driver settled them (`changed`:
    `offers.settling.fixes`), and the columns follow-ups are planned on (`PLAN_COLUMNS`)."""
    settle = settle_with(changed)
    for batch in batches:
        customers = _customers(batch, step)
        decided = decide(
            customers, step.history, step.recent, step.ctx, step.table, step.book, settle=settle
        )
        plan = customers.select(PLAN_COLUMNS)
        yield decided.join(plan, on="customer_id", how="left", maintain_order="left")


def _decisions(shared: Any, changed: Any) -> Any:
    """Per partition: the decisions, back to the driver."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from _blobs(_decided(shared.value, changed.value, batches))

    return run


def _collect(frame: DataFrame) -> pl.DataFrame | None:
    return _read_ipc([row[0] for row in frame.collect()])


_BLOB = "ipc binary"


def _affected_rows(
    spark: SparkSession, profiles: SparkProfiles, everyone: int | None, affected: list[str]
) -> DataFrame:
    """The affected customers' profiles, spread over every core (`everyone`: the dataset's
    row count when every profile is affected, so no join)."""
    from pyspark.sql import functions as F

    if everyone is not None and len(affected) == everyone:
        return spread(profiles.frame)  # the ledger adds nobody the dataset lacks
    ids = spark.createDataFrame(pl.DataFrame({"customer_id": affected}).to_arrow())
    small = len(affected) < 1_000_000
    return spread(profiles.frame.join(F.broadcast(ids) if small else ids, "customer_id"))


def _settled(spark: SparkSession, rows: DataFrame, shared: Any, ctx: StepContext) -> Any:
    """The rows stock and budget changed, settled on the driver over every candidate, and
    broadcast back."""
    found = _collect(rows.mapInArrow(_offered(shared), _BLOB))
    changed = fixes(pl.DataFrame() if found is None else found, ctx)
    return spark.sparkContext.broadcast(changed)


def _decider(spark: SparkSession, profiles: SparkProfiles, everyone: int | None) -> Any:
    """Decide on the executors and bring every decision to the driver."""

    def run(
        affected: list[str],
        history: pl.DataFrame,
        recent: pl.DataFrame,
        ctx: StepContext,
        table: OfferTable,
        book: MessageBook,
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        rows = _affected_rows(spark, profiles, everyone, affected).persist()
        step = _Step(profiles.schema, profiles.model, history, recent, ctx, table, book)
        shared = spark.sparkContext.broadcast(step)
        try:
            changed = _settled(spark, rows, shared, ctx)
            decided = _collect(rows.mapInArrow(_decisions(shared, changed), _BLOB))
        finally:
            rows.unpersist()
        if decided is None:  # nobody left to decide at this step
            nobody = profiles.model.assign(pl.DataFrame(schema=profiles.schema))
            none = decide(nobody, history, recent, ctx, table, book)
            return none, pl.DataFrame(schema={c: profiles.schema[c] for c in PLAN_COLUMNS})
        return decided.drop(PLAN_COLUMNS[1:]), decided.select(PLAN_COLUMNS)

    return run


def _written(shared: Any, changed: Any, plan: Any, staging: Staging) -> Any:
    """Per partition: the decisions, with stock and budget as the driver settled them,
    and their follow-ups, copied into the update's staging tables; yields how many."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        step: _Step = shared.value
        parts = []
        for decided in _decided(step, changed.value, batches):
            fresh = decided.drop(PLAN_COLUMNS[1:]).cast(DECISION_SCHEMA)  # type: ignore[arg-type]
            planned = plan.value(fresh, decided.select(PLAN_COLUMNS))
            parts.append(ledger_rows(fresh, step.ctx.now, planned))
        if parts:
            staging.write(pl.concat([r for r, _ in parts]), pl.concat([w for _, w in parts]))
        written = sum(r.height for r, _ in parts)
        yield pa.RecordBatch.from_arrays([pa.array([written], pa.int64())], names=["written"])

    return run


def _recorder(
    spark: SparkSession, profiles: SparkProfiles, everyone: int | None, made: list[Staging]
) -> Any:
    """Decide on the executors, each partition writing its decisions into staging tables
    made for this update (listed in `made`); then record them all under the incident's
    lock with one insert-select."""

    def run(
        tx: Tx,
        plan: Any,
        affected: list[str],
        history: pl.DataFrame,
        recent: pl.DataFrame,
        ctx: StepContext,
        table: OfferTable,
        book: MessageBook,
    ) -> tuple[int, float]:
        rows = _affected_rows(spark, profiles, everyone, affected).persist()
        step = _Step(profiles.schema, profiles.model, history, recent, ctx, table, book)
        shared = spark.sparkContext.broadcast(step)
        try:
            changed = _settled(spark, rows, shared, ctx)
            staging = Staging.create(tx.conn.engine)
            made.append(staging)
            planner = spark.sparkContext.broadcast(plan)
            rows.mapInArrow(_written(shared, changed, planner, staging), "written long").collect()
        finally:
            rows.unpersist()
        return staging.merge(tx.conn)

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

    On a PostgreSQL ledger each partition writes its own decisions (`offers.ledger.staging`)
    and the driver never holds them all; an SQLite ledger is written from the driver.
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
    made: list[Staging] = []
    engine = parts.ledger.engine
    recorder = _recorder(spark, profiles, everyone, made)
    try:
        outcome = apply_update(
            spark_parts,
            incident,
            customer_ids,
            now,
            dry_run=dry_run,
            budget=budget,
            decider=_decider(spark, profiles, everyone),
            recorder=recorder if engine.dialect.name == "postgresql" else None,
        )
    finally:
        for staging in made:  # recorded and dropped with the update, unless it failed
            staging.drop(engine)
    if outcome.issued >= REFRESH_STATISTICS_AFTER:
        parts.ledger.refresh_statistics()  # after the commit, outside the lock
    return outcome
