"""Profiles derived from real retail transactions (the committed slice, see data/README.md)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from api.cli import cli
from segmentation.derive import EXTRA_COLUMNS, Derived, derive, derive_profiles
from segmentation.profiles import PROFILE_SCHEMA
from segmentation.snapshots import Snapshots

SLICE = Path(__file__).parent / "data" / "retail_slice.parquet"
AS_OF = datetime(2011, 12, 10)
WINDOW_START = datetime(2010, 12, 10)
COLUMNS = {
    "customer": "CustomerID",
    "time": "InvoiceDate",
    "amount": "Quantity*UnitPrice",
    "quantity": "Quantity",
    "invoice": "InvoiceNo",
}


@pytest.fixture(scope="module")
def raw() -> pl.DataFrame:
    return pl.read_parquet(SLICE)


@pytest.fixture(scope="module")
def derived() -> Derived:
    return derive(SLICE, as_of=AS_OF, **COLUMNS)


def expected(raw: pl.DataFrame, customer: int) -> dict[str, float | int]:
    """The customer's numbers straight from their rows: plain filters and sums."""
    rows = raw.filter(pl.col("CustomerID") == customer)
    recent = rows.filter(pl.col("InvoiceDate") > WINDOW_START)
    orders = rows.filter(~pl.col("InvoiceNo").str.starts_with("C"))
    invoices = orders.partition_by("InvoiceNo")
    values = [
        sum(q * p for q, p in zip(i["Quantity"], i["UnitPrice"], strict=True)) for i in invoices
    ]
    net = sum(q * p for q, p in zip(recent["Quantity"], recent["UnitPrice"], strict=True))
    last, first = orders["InvoiceDate"].max(), orders["InvoiceDate"].min()
    assert isinstance(last, datetime) and isinstance(first, datetime)
    return {
        "recency_days": (AS_OF - last).days,
        "frequency_12m": recent.filter(~pl.col("InvoiceNo").str.starts_with("C"))[
            "InvoiceNo"
        ].n_unique(),
        "monetary_12m": net,
        "tenure_years": round((AS_OF - first).days / 365.25, 2),
        "basket_mean": sum(values) / len(values),
        "basket_items_mean": orders["Quantity"].sum() / len(invoices),
    }


@pytest.mark.parametrize("customer", [13420, 15400])
def test_numbers_match_a_hand_count(raw: pl.DataFrame, derived: Derived, customer: int) -> None:
    want = expected(raw, customer)
    got = derived.profiles.filter(pl.col("customer_id") == str(customer)).row(0, named=True)
    assert raw.filter(pl.col("CustomerID") == customer)["InvoiceNo"].str.starts_with("C").any()
    for key, value in want.items():
        assert got[key] == pytest.approx(value), key
    assert got["trips_12m"] == want["frequency_12m"]
    assert got["spend_12m"] == pytest.approx(max(float(want["monetary_12m"]), 0.0), abs=0.005)
    assert got["avg_fare"] == pytest.approx(got["spend_12m"] / got["trips_12m"], abs=0.01)


def test_report_accounts_for_nulls_and_returns(raw: pl.DataFrame, derived: Derived) -> None:
    report = derived.report
    known = raw.filter(pl.col("CustomerID").is_not_null())
    value = known["Quantity"] * known["UnitPrice"]
    assert report.rows == raw.height == 16_287
    assert report.null_customer_rows == raw["CustomerID"].null_count() == 263
    assert report.used_rows == known.height
    assert report.return_rows == int((value < 0).sum())
    assert report.returns_value == pytest.approx(float(value.filter(value < 0).sum()))
    assert (
        report.cancelled_invoices
        == known.filter(pl.col("InvoiceNo").str.starts_with("C"))["InvoiceNo"].n_unique()
    )
    assert report.customers == derived.profiles.height == known["CustomerID"].n_unique() == 195
    assert (report.as_of, report.window_start) == (AS_OF, WINDOW_START)


def test_profiles_fit_the_schema_with_rfm_columns(derived: Derived) -> None:
    frame = derived.profiles
    assert frame.columns == [*PROFILE_SCHEMA, *EXTRA_COLUMNS]
    assert frame.select(*PROFILE_SCHEMA).schema == pl.Schema(PROFILE_SCHEMA)
    assert frame["customer_id"].is_unique().all() and frame["spend_12m"].min() == 0.0
    tiers = frame["tier"].value_counts().sort("tier")
    assert tiers["tier"].cast(pl.String).to_list() == ["basic", "silver", "gold", "platinum"]
    top = frame.sort("spend_12m").tail(1)["tier"].cast(pl.String).item()
    assert top == "platinum"
    assert frame["allowed_channels"].to_list()[0] == ["email"]


def test_a_customer_with_only_returns_has_no_orders(derived: Derived) -> None:
    # 12870's only rows are one cancelled invoice, on 2010-12-08, before the window
    (row,) = derived.profiles.filter(pl.col("customer_id") == "12870").to_dicts()
    assert (row["trips_12m"], row["spend_12m"], row["monetary_12m"]) == (0, 0.0, 0.0)
    assert (row["recency_days"], row["tenure_years"], row["tier"]) == (None, None, "basic")


def test_csv_without_invoices_orders_by_timestamp(raw: pl.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    raw.with_columns(amount=pl.col("Quantity") * pl.col("UnitPrice")).write_csv(path)
    frame = derive_profiles(path, "CustomerID", "InvoiceDate", "amount", as_of=AS_OF.date())
    (row,) = frame.filter(pl.col("customer_id") == "15400").to_dicts()
    orders = raw.filter(
        pl.col("CustomerID") == 15400,
        pl.col("InvoiceDate") > WINDOW_START,
        pl.col("Quantity") > 0,
    )
    assert row["trips_12m"] == orders["InvoiceDate"].n_unique()


def test_rows_after_as_of_are_left_out_and_counted(raw: pl.DataFrame) -> None:
    cut = datetime(2011, 6, 1)
    report = derive(SLICE, as_of=cut, **COLUMNS).report
    known = raw.filter(pl.col("CustomerID").is_not_null())
    assert report.after_as_of_rows == known.filter(pl.col("InvoiceDate") > cut).height
    assert report.used_rows + report.after_as_of_rows + report.null_customer_rows == raw.height


@pytest.mark.parametrize("amount", ["a*b*c", "Quantity*", "nope"])
def test_bad_amount_specs_are_refused(amount: str) -> None:
    with pytest.raises((ValueError, pl.exceptions.ColumnNotFoundError)):
        derive_profiles(SLICE, "CustomerID", "InvoiceDate", amount)


def test_cli_derive_writes_a_file_or_a_snapshot(tmp_path: Path) -> None:
    base = [
        "profiles", "derive", str(SLICE), "--customer", "CustomerID", "--time", "InvoiceDate",
        "--amount", "Quantity*UnitPrice", "--invoice", "InvoiceNo", "--quantity", "Quantity",
        "--as-of", "2011-12-10",
    ]  # fmt: skip
    runner = CliRunner()
    out = tmp_path / "derived.parquet"
    result = runner.invoke(cli, ["--data", str(tmp_path / "d"), *base, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 195 profiles" in result.output and "263" in result.output
    assert pl.read_parquet(out).height == 195
    loaded = runner.invoke(cli, ["--data", str(tmp_path / "d"), *base, "--import"])
    assert loaded.exit_code == 0, loaded.output
    assert Snapshots(tmp_path / "d").load().height == 195
    neither = runner.invoke(cli, ["--data", str(tmp_path / "d"), *base])
    assert neither.exit_code == 2 and "exactly one" in neither.output
