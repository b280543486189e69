"""Profiles from a transaction log too large for one machine, with Spark SQL.

The same rules as `segmentation.derive` (read its docstring): Spark reads the lines
(Parquet files, directories, globs, partitioned data; CSV), keeps the usable ones and sums
them per order and per customer on the executors. Only one row per customer comes back:
Spark writes it as Parquet and the driver finishes it with the polars code of the local path
(days, tenure, tier by spend percentile, the profile schema), so both engines give the same
profiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from segmentation.derive import Derived, DeriveReport, finish_rfm, to_profiles

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["derive_on_spark", "read_transactions"]


def read_transactions(spark: SparkSession, paths: Sequence[str | Path]) -> DataFrame:
    """Parquet (files, directories, globs, partitioned folders) or CSV with a header."""
    names = [str(p) for p in paths]
    csv = [n for n in names if n.lower().endswith(".csv")]
    if csv and len(csv) != len(names):
        raise ValueError("transactions must be all Parquet or all CSV, not a mix")
    if csv:
        return spark.read.csv(names, header=True, inferSchema=True)
    return spark.read.parquet(*names)


def _lines(
    frame: DataFrame,
    customer: str,
    time_: str,
    amount: str,
    quantity: str | None,
    invoice: str | None,
) -> DataFrame:
    """customer_id, at, value (signed), items, order, cancelled: as `derive._lines`."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    columns = frame.columns
    for name in (customer, time_, quantity, invoice):
        if name is not None and name not in columns:
            raise ValueError(f"no column {name!r} in the transactions ({', '.join(columns)})")
    names = [n.strip() for n in amount.split("*")]
    if len(names) > 2 or not all(names):
        raise ValueError(f"amount must be a column or COLUMN*COLUMN, got {amount!r}")
    for name in names:
        if name not in columns:
            raise ValueError(f"no column {name!r} in the transactions ({', '.join(columns)})")
    kind = frame.schema[time_].dataType
    at: Column = F.col(time_)
    if isinstance(kind, T.StringType):
        at = F.try_to_timestamp(at)
    at = at.try_cast("timestamp")
    raw = F.col(names[0]).try_cast("double")
    if len(names) == 2:
        raw = raw * F.col(names[1]).try_cast("double")
    order = F.col(invoice).cast("string") if invoice else at.cast("string")
    cancelled = order.startswith("C") if invoice else F.lit(False)
    value = F.when(cancelled, -F.abs(raw)).otherwise(raw)
    items = F.col(quantity).try_cast("double") if quantity else F.lit(1.0)
    return frame.select(
        F.col(customer).cast("string").alias("customer_id"),
        at.alias("at"),
        value.alias("value"),
        items.alias("items"),
        order.alias("order"),
        F.coalesce(cancelled, F.lit(False)).alias("cancelled"),
    )


def _as_of(lines: DataFrame, as_of: date | datetime | None) -> datetime:
    from pyspark.sql import functions as F

    if isinstance(as_of, datetime):
        return as_of.replace(tzinfo=None)
    if isinstance(as_of, date):
        return datetime.combine(as_of, time())
    newest = lines.select(F.unix_micros(F.max("at"))).first()
    if newest is None or newest[0] is None:
        raise ValueError("no transaction has a usable time")
    return _from_micros(int(newest[0]))


def _from_micros(micros: int) -> datetime:
    value = pl.select(pl.lit(micros).cast(pl.Datetime("us"))).item()
    assert isinstance(value, datetime)
    return value


def _micros(moment: datetime) -> int:
    return int(pl.select(pl.lit(moment).cast(pl.Datetime("us")).cast(pl.Int64)).item())


def _report(lines: DataFrame, usable: Column, end: Column) -> dict[str, Any]:
    from pyspark.sql import functions as F

    used = usable & (F.col("at") <= end)
    returned = used & (F.col("value") < 0)

    def count(condition: Column) -> Column:
        return F.coalesce(F.sum(F.when(condition, 1).otherwise(0)), F.lit(0))

    row = lines.select(
        F.count(F.lit(1)).alias("rows"),
        count(used).alias("used_rows"),
        count(F.col("customer_id").isNull()).alias("null_customer_rows"),
        count(F.col("customer_id").isNotNull() & ~usable).alias("unusable_rows"),
        count(usable & (F.col("at") > end)).alias("after_as_of_rows"),
        count(returned).alias("return_rows"),
        F.coalesce(F.sum(F.when(returned, F.col("value"))), F.lit(0.0)).alias("returns_value"),
        F.count_distinct(F.when(used & F.col("cancelled"), F.col("order"))).alias(
            "cancelled_invoices"
        ),
    ).first()
    assert row is not None
    return {k: (float(v) if k == "returns_value" else int(v)) for k, v in row.asDict().items()}


def _per_customer(used: DataFrame, start: Column) -> DataFrame:
    """monetary_12m, first, last (epoch microseconds), frequency_12m, basket_* per customer."""
    from pyspark.sql import functions as F

    in_window = F.col("at") > start
    net = used.groupBy("customer_id").agg(
        F.coalesce(F.sum(F.when(in_window, F.col("value"))), F.lit(0.0)).alias("monetary_12m")
    )
    orders = (
        used.where(~F.col("cancelled") & (F.col("value") >= 0))
        .groupBy("customer_id", "order")
        .agg(
            F.min("at").alias("at"),
            F.sum("value").alias("basket"),
            F.coalesce(F.sum("items"), F.lit(0.0)).alias("items"),
        )
    )
    baskets = orders.groupBy("customer_id").agg(
        F.unix_micros(F.min("at")).alias("first"),
        F.unix_micros(F.max("at")).alias("last"),
        F.sum(F.when(in_window, 1).otherwise(0)).cast("int").alias("frequency_12m"),
        F.avg("basket").alias("basket_mean"),
        F.percentile("basket", F.lit(0.5)).alias("basket_median"),
        F.avg("items").alias("basket_items_mean"),
    )
    return net.join(baskets, on="customer_id", how="left")


def derive_on_spark(
    spark: SparkSession,
    paths: Sequence[str | Path],
    customer: str,
    time: str,
    amount: str,
    workdir: Path,
    as_of: date | datetime | None = None,
    quantity: str | None = None,
    invoice: str | None = None,
) -> Derived:
    """`segmentation.derive.derive` on Spark: same profiles and the same report.

    The per-customer sums are written as Parquet under `workdir` (a folder the driver can
    read: local disk under local masters, shared storage on a cluster) and finished there.
    """
    from pyspark.sql import functions as F

    lines = _lines(read_transactions(spark, paths), customer, time, amount, quantity, invoice)
    end = _as_of(lines, as_of)
    start = pl.select(pl.lit(end).dt.offset_by("-12mo")).item()
    end_at = F.timestamp_micros(F.lit(_micros(end)))
    start_at = F.timestamp_micros(F.lit(_micros(start)))
    usable = F.col("customer_id").isNotNull() & F.col("at").isNotNull() & F.col("value").isNotNull()
    used = lines.where(usable & (F.col("at") <= end_at))
    rfm_dir = workdir / "rfm.parquet"
    _per_customer(used, start_at).write.mode("overwrite").parquet(str(rfm_dir))
    counts = _report(lines, usable, end_at)
    rfm = pl.scan_parquet(rfm_dir / "*.parquet").with_columns(
        pl.col("first", "last").cast(pl.Datetime("us"))
    )
    frame = to_profiles(finish_rfm(rfm, end).collect(engine="streaming"))
    report = DeriveReport(**counts, customers=frame.height, as_of=end, window_start=start)
    return Derived(profiles=frame, report=report)
