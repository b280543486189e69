"""Profiles from a transaction log: recency, frequency, monetary value, tenure, baskets.

One lazy polars query per output (per-customer profiles and a report of what was left out),
run on the streaming engine, so a file larger than memory works the same as a small one.

Rules, with `as_of` (default: the newest transaction) and the window = the 12 months before it:
- rows with a null customer, an unparseable time or a null amount are left out and counted;
  so are rows after `as_of`.
- a line's value is the amount (or quantity x unit price, `amount="Quantity*UnitPrice"`);
  lines of cancellation invoices (invoice starting with "C") are returns and always count as
  negative; every negative line nets against spend and is counted in the report.
- an order is an invoice (or, without an invoice column, one timestamp) that is not a
  cancellation; its basket value is the sum of its non-negative lines, its items the sum of
  the quantities (or the number of lines when there is no quantity column).

Mapping into the profile schema:
- `spend_12m` = net value of all lines in the window, clipped at 0 (`monetary_12m` keeps the
  unclipped net); `trips_12m` = orders in the window (`frequency_12m`); `avg_fare` =
  spend_12m / trips_12m (null without orders); `tenure_years` = years from the first order
  to `as_of`; `tier` by spend percentile among the derived customers (top 5% platinum, next
  15% gold, next 30% silver, the rest basic);
- defaults: language "en", preferred_channel "email", allowed_channels ["email"],
  consent_marketing False; facts a transaction log does not hold (name, contact details,
  business_share, duty-free, lounge, complaints, gender, birth_year) are null;
- extra columns: recency_days (whole days since the last order), frequency_12m,
  monetary_12m, basket_mean, basket_median, basket_items_mean (over all orders to `as_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Literal

import msgspec
import polars as pl

from segmentation.profiles import CHANNELS, PROFILE_SCHEMA, TIERS, conform

__all__ = [
    "DERIVED_COLUMNS",
    "EXTRA_COLUMNS",
    "DeriveReport",
    "Derived",
    "derive",
    "derive_profiles",
    "finish_rfm",
    "scan_transactions",
    "to_profiles",
]

Source = str | Path | Sequence[str | Path] | pl.LazyFrame | pl.DataFrame

EXTRA_COLUMNS: tuple[str, ...] = (
    "recency_days",
    "frequency_12m",
    "monetary_12m",
    "basket_mean",
    "basket_median",
    "basket_items_mean",
)
DERIVED_COLUMNS: tuple[str, ...] = (
    "trips_12m",
    "spend_12m",
    "avg_fare",
    "tenure_years",
    "tier",
    *EXTRA_COLUMNS,
)
"""What a transaction log says about a customer; an upsert of derived profiles updates only
these for customers already known (their names, contacts and consent are not defaults)."""
_TIER_FLOORS = ((0.95, "platinum"), (0.80, "gold"), (0.50, "silver"))


class DeriveReport(msgspec.Struct, frozen=True, kw_only=True):
    """What went in, what was left out and why: nothing is dropped without a count."""

    rows: int
    used_rows: int
    null_customer_rows: int
    unusable_rows: int  # null or unparseable time, null amount
    after_as_of_rows: int
    return_rows: int  # negative lines, cancellations included
    returns_value: float  # their total, a negative number
    cancelled_invoices: int
    customers: int
    as_of: datetime
    window_start: datetime


@dataclass(frozen=True)
class Derived:
    profiles: pl.DataFrame
    report: DeriveReport


def scan_transactions(source: Source) -> pl.LazyFrame:
    """A lazy frame over Parquet, CSV or NDJSON files (or a frame already in hand)."""
    if isinstance(source, pl.LazyFrame):
        return source
    if isinstance(source, pl.DataFrame):
        return source.lazy()
    paths = [Path(source)] if isinstance(source, str | Path) else [Path(p) for p in source]
    suffixes = {p.suffix.lower() for p in paths}
    if suffixes == {".parquet"}:
        return pl.scan_parquet(paths)
    if suffixes == {".csv"}:
        return pl.scan_csv(paths, infer_schema_length=10_000)
    if suffixes <= {".ndjson", ".jsonl"}:
        return pl.scan_ndjson(paths)
    raise ValueError(f"transactions must be Parquet, CSV or NDJSON files, got {sorted(suffixes)}")


def derive_profiles(
    source: Source,
    customer: str,
    time: str,
    amount: str | pl.Expr,
    as_of: date | datetime | None = None,
    quantity: str | None = None,
    invoice: str | None = None,
) -> pl.DataFrame:
    """Per-customer profiles (PROFILE_SCHEMA plus RFM columns) from transactions."""
    return derive(source, customer, time, amount, as_of, quantity, invoice).profiles


def derive(
    source: Source,
    customer: str,
    time: str,
    amount: str | pl.Expr,
    as_of: date | datetime | None = None,
    quantity: str | None = None,
    invoice: str | None = None,
    *,
    engine: Literal["streaming", "in-memory"] = "streaming",
) -> Derived:
    """`derive_profiles` plus the report of rows left out, returns and cancellations.

    `engine="in-memory"` runs the same query on polars' default engine (for comparison).
    """
    lines = _lines(scan_transactions(source), customer, time, amount, quantity, invoice)
    end = _as_of(lines, as_of)
    start = pl.select(pl.lit(end).dt.offset_by("-12mo")).item()
    usable = (
        pl.col("customer_id").is_not_null()
        & pl.col("at").is_not_null()
        & pl.col("value").is_not_null()
    )
    used = lines.filter(usable & (pl.col("at") <= end))
    profiles, report = pl.collect_all(
        [_per_customer(used, end, start), _report(lines, usable, end)], engine=engine
    )
    frame = to_profiles(profiles)
    counts = report.row(0, named=True)
    return Derived(
        profiles=frame,
        report=DeriveReport(
            **counts,
            customers=frame.height,
            as_of=end,
            window_start=start,
        ),
    )


def _amount(amount: str | pl.Expr) -> pl.Expr:
    if isinstance(amount, pl.Expr):
        return amount
    names = [name.strip() for name in amount.split("*")]
    if len(names) > 2 or not all(names):
        raise ValueError(f"amount must be a column or COLUMN*COLUMN, got {amount!r}")
    expr = pl.col(names[0]).cast(pl.Float64)
    return expr if len(names) == 1 else expr * pl.col(names[1]).cast(pl.Float64)


def _lines(
    frame: pl.LazyFrame,
    customer: str,
    time: str,
    amount: str | pl.Expr,
    quantity: str | None,
    invoice: str | None,
) -> pl.LazyFrame:
    """One row per transaction line: customer_id, at, value (signed), items, order, cancelled."""
    schema = frame.collect_schema()
    for name in (customer, time, quantity, invoice):
        if name is not None and name not in schema:
            raise ValueError(f"no column {name!r} in the transactions ({', '.join(schema)})")
    at = pl.col(time)
    kind = schema[time]
    if kind == pl.String:
        at = at.str.to_datetime(strict=False)
    elif isinstance(kind, pl.Datetime) and kind.time_zone is not None:
        at = at.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    elif not isinstance(kind, pl.Datetime):
        at = at.cast(pl.Datetime("us"), strict=False)
    order = pl.col(invoice).cast(pl.String) if invoice else at.cast(pl.String)
    cancelled = order.str.starts_with("C") if invoice else pl.lit(False)
    raw = _amount(amount)
    value = pl.when(cancelled).then(-raw.abs()).otherwise(raw)
    items = pl.col(quantity).cast(pl.Float64) if quantity else pl.lit(1.0)
    return frame.select(
        customer_id=pl.col(customer).cast(pl.String),
        at=at.cast(pl.Datetime("us")),
        value=value,
        items=items,
        order=order,
        cancelled=cancelled,
    )


def _as_of(lines: pl.LazyFrame, as_of: date | datetime | None) -> datetime:
    if isinstance(as_of, datetime):
        return as_of.replace(tzinfo=None)
    if isinstance(as_of, date):
        return datetime.combine(as_of, time())
    newest = lines.select(pl.col("at").max()).collect(engine="streaming").item()
    if newest is None:
        raise ValueError("no transaction has a usable time")
    assert isinstance(newest, datetime)
    return newest


def _per_customer(used: pl.LazyFrame, end: datetime, start: datetime) -> pl.LazyFrame:
    in_window = pl.col("at") > start
    net = used.group_by("customer_id").agg(
        monetary_12m=pl.col("value").filter(in_window).sum(),
    )
    orders = (
        used.filter(~pl.col("cancelled") & (pl.col("value") >= 0))
        .group_by("customer_id", "order")
        .agg(at=pl.col("at").min(), basket=pl.col("value").sum(), items=pl.col("items").sum())
    )
    baskets = orders.group_by("customer_id").agg(
        first=pl.col("at").min(),
        last=pl.col("at").max(),
        frequency_12m=in_window.sum().cast(pl.Int32),
        basket_mean=pl.col("basket").mean(),
        basket_median=pl.col("basket").median(),
        basket_items_mean=pl.col("items").mean(),
    )
    return finish_rfm(net.join(baskets, on="customer_id", how="left"), end)


def finish_rfm(rfm: pl.LazyFrame, end: datetime) -> pl.LazyFrame:
    """Per-customer sums (monetary_12m, first, last, frequency_12m, basket_*) to RFM columns:
    shared by the polars query and the Spark one, so both round and count days alike."""
    days = pl.lit(end) - pl.col("last")
    return (
        rfm.with_columns(
            recency_days=days.dt.total_days().cast(pl.Int32),
            tenure_years=((pl.lit(end) - pl.col("first")).dt.total_days() / 365.25).round(2),
            frequency_12m=pl.col("frequency_12m").fill_null(0).cast(pl.Int32),
        )
        .drop("first", "last")
        .sort("customer_id")
    )


def _report(lines: pl.LazyFrame, usable: pl.Expr, end: datetime) -> pl.LazyFrame:
    used = usable & (pl.col("at") <= end)
    returned = used & (pl.col("value") < 0)
    return lines.select(
        rows=pl.len(),
        used_rows=used.sum(),
        null_customer_rows=pl.col("customer_id").is_null().sum(),
        unusable_rows=(pl.col("customer_id").is_not_null() & ~usable).sum(),
        after_as_of_rows=(usable & (pl.col("at") > end)).sum(),
        return_rows=returned.sum(),
        returns_value=pl.col("value").filter(returned).sum(),
        cancelled_invoices=pl.col("order").filter(used & pl.col("cancelled")).n_unique(),
    )


def to_profiles(rfm: pl.DataFrame) -> pl.DataFrame:
    """RFM columns to the profile schema: spend, trips, tier by spend percentile, defaults."""
    spend = pl.col("monetary_12m").clip(lower_bound=0.0).round(2)
    share_below = (pl.col("spend_12m").rank("min") - 1) / pl.len()
    tier = pl.lit("basic")
    for floor, name in reversed(_TIER_FLOORS):
        tier = pl.when(share_below >= floor).then(pl.lit(name)).otherwise(tier)
    email = pl.Series([["email"]], dtype=pl.List(pl.Enum(CHANNELS)))
    known = {"customer_id", "tenure_years"}
    nulls = [
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in PROFILE_SCHEMA.items()
        if name not in known
    ]
    frame = (
        rfm.with_columns(*nulls)
        .with_columns(spend_12m=spend, trips_12m=pl.col("frequency_12m"))
        .with_columns(
            language=pl.lit("en"),
            preferred_channel=pl.lit("email"),
            allowed_channels=pl.lit(email).first(),
            consent_marketing=pl.lit(False),
            tier=tier.cast(pl.Enum(TIERS)),
            avg_fare=pl.when(pl.col("trips_12m") > 0)
            .then((pl.col("spend_12m") / pl.col("trips_12m")).round(2))
            .otherwise(None),
        )
    )
    return conform(frame.select(*PROFILE_SCHEMA, *EXTRA_COLUMNS))
