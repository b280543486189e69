"""Benchmark: profiles from both Online Retail files stacked (1,044,847 transaction lines).

Times, in one run: `derive` on a lazy scan with the streaming engine, the same query on
polars' in-memory engine, and a naive per-customer Python loop (the hand-written RFM
loop: group, then walk each customer's rows) timed on a sample of customers and
extrapolated by rows to the whole data set. The loop's answers are checked against
`derive` for the sampled customers, so the comparison is between equal results.

    .venv/bin/python bench/derive.py [--data ../shared/data] [--sample 400] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from segmentation.derive import derive

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
COLUMNS: dict[str, Any] = {
    "customer": "CustomerID",
    "time": "InvoiceDate",
    "amount": "Quantity*UnitPrice",
    "quantity": "Quantity",
    "invoice": "InvoiceNo",
}


def stacked(data: Path) -> pl.LazyFrame:
    """2009-12 .. 2011-12 without the overlapping week (see the shared data README)."""
    older = (
        pl.scan_parquet(data / "online_retail_ii_2009_2010.parquet")
        .filter(pl.col("InvoiceDate") < datetime(2010, 12, 1))
        .rename({"Invoice": "InvoiceNo", "Price": "UnitPrice", "Customer ID": "CustomerID"})
    )
    newer = pl.scan_parquet(data / "online_retail_2010_2011.parquet")
    return pl.concat([older, newer], how="vertical")


def naive(groups: dict[Any, pl.DataFrame], as_of: datetime, start: datetime) -> dict[str, Any]:
    """Per-customer Python loop over rows: recency, frequency, monetary, tenure."""
    out = {}
    for (customer,), rows in groups.items():
        monetary, invoices, first, last = 0.0, set(), None, None
        for row in rows.iter_rows(named=True):
            value = row["Quantity"] * row["UnitPrice"]
            cancelled = row["InvoiceNo"].startswith("C")
            if cancelled:
                value = -abs(value)
            if row["InvoiceDate"] > start:
                monetary += value
            if not cancelled and value >= 0:
                at = row["InvoiceDate"]
                first = at if first is None or at < first else first
                last = at if last is None or at > last else last
                if at > start:
                    invoices.add(row["InvoiceNo"])
        out[str(customer)] = {
            "monetary_12m": monetary,
            "frequency_12m": len(invoices),
            "recency_days": None if last is None else (as_of - last).days,
            "tenure_years": None if first is None else (as_of - first).days / 365.25,
        }
    return out


def best(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - began)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--sample", type=int, default=400, help="customers in the naive loop")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    source = stacked(args.data)
    streaming_s, derived = best(args.repeat, lambda: derive(source, **COLUMNS))
    memory_s, _ = best(args.repeat, lambda: derive(source, **COLUMNS, engine="in-memory"))
    report = derived.report
    frame = source.collect()
    ids = frame["CustomerID"].drop_nulls().unique().sort().sample(args.sample, seed=7)
    sample = frame.filter(pl.col("CustomerID").is_in(ids.implode()))
    groups = sample.partition_by("CustomerID", as_dict=True)
    loop_s, answers = best(1, lambda: naive(groups, report.as_of, report.window_start))
    check = derived.profiles.filter(pl.col("customer_id").is_in(list(answers)))
    for row in check.iter_rows(named=True):
        want = answers[row["customer_id"]]
        assert math.isclose(row["monetary_12m"], want["monetary_12m"], abs_tol=0.01), row
        assert row["frequency_12m"] == want["frequency_12m"], row
        assert row["recency_days"] == want["recency_days"], row
    loop_all_s = loop_s * report.used_rows / sample.height

    print(f"transactions: {report.rows:,} rows, {report.used_rows:,} used, "
          f"{report.null_customer_rows:,} without customer, {report.return_rows:,} returns, "
          f"{report.customers:,} customers; as of {report.as_of:%Y-%m-%d %H:%M}")  # fmt: skip
    print(f"derive, streaming engine:   {streaming_s:8.3f} s  (best of {args.repeat})")
    print(f"derive, in-memory engine:   {memory_s:8.3f} s  ({memory_s / streaming_s:.1f}x)")
    print(
        f"naive per-customer loop:    {loop_all_s:8.3f} s  ({loop_all_s / streaming_s:.0f}x)"
        f"  extrapolated from {len(answers)} customers, {sample.height:,} rows"
        f" in {loop_s:.3f} s; answers match derive"
    )


if __name__ == "__main__":
    main()
