"""Profile import: every format, mappings, each kind of error with its row, quarantine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from api.cli import cli
from segmentation.book import ProfileBook, mask
from segmentation.importer import REQUIRED_COLUMNS, import_profiles
from segmentation.mapping import MappingError, parse_mapping
from segmentation.model import Segmentation
from segmentation.profiles import PROFILE_SCHEMA
from segmentation.snapshots import Snapshots
from segmentation.synth import synth_profiles


def as_text(profiles: pl.DataFrame) -> pl.DataFrame:
    """Profiles as a spreadsheet holds them: every cell text, channel lists as "sms|email"."""
    lists = pl.col("allowed_channels").cast(pl.List(pl.String)).list.join("|")
    return profiles.with_columns(lists).cast(pl.String)


@pytest.fixture(scope="module")
def profiles() -> pl.DataFrame:
    return synth_profiles(40, 5).drop("latent_kind")


def put(frame: pl.DataFrame, row: int, column: str, value: str | None) -> pl.DataFrame:
    """`frame` with one cell replaced; `row` is 1-based like the importer's rows."""
    index = pl.int_range(pl.len()) == row - 1
    return frame.with_columns(
        pl.when(index).then(pl.lit(value, dtype=pl.String)).otherwise(pl.col(column)).alias(column)
    )


@pytest.mark.parametrize("suffix", ["csv", "parquet", "ndjson", "xlsx"])
def test_every_format_round_trips(profiles: pl.DataFrame, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"profiles.{suffix}"
    if suffix == "csv":
        as_text(profiles).write_csv(path)
    elif suffix == "xlsx":
        as_text(profiles).write_excel(path)
    elif suffix == "parquet":
        profiles.write_parquet(path)
    else:
        profiles.write_ndjson(path)
    result = import_profiles(path)
    assert result.ok and result.errors == () and result.rows == 40
    assert result.profiles.schema == pl.Schema(PROFILE_SCHEMA)
    assert result.profiles.equals(profiles)


@pytest.mark.parametrize("suffix", ["csv", "parquet", "ndjson", "xlsx"])
def test_rows_are_counted_the_same_in_every_format(
    profiles: pl.DataFrame, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"bad.{suffix}"
    bad = profiles.with_columns(
        spend_12m=pl.when(pl.int_range(pl.len()) == 5).then(-1.0).otherwise("spend_12m")
    )
    if suffix in ("csv", "xlsx"):
        text = as_text(bad)
        text.write_csv(path) if suffix == "csv" else text.write_excel(path)
    else:
        bad.write_parquet(path) if suffix == "parquet" else bad.write_ndjson(path)
    (error,) = import_profiles(path).errors
    assert (error.row, error.column, error.value) == (6, "spend_12m", "-1.0")


CASES = [
    # (row, column, written value, reason fragment)
    (3, "spend_12m", "-12.5", "negative"),
    (4, "tier", "diamond", "unknown value (expected basic, silver, gold, platinum)"),
    (5, "language", "fr", "unknown value"),
    (6, "allowed_channels", "sms|pigeon", "unknown value (expected sms|email|app|chat)"),
    (7, "trips_12m", "2.5", "not a whole number"),
    (8, "avg_fare", "cheap", "not a number"),
    (9, "consent_marketing", "maybe", "not true or false"),
    (10, "business_share", "1.5", "between 0 and 1"),
    (11, "preferred_channel", None, "missing value"),
    (12, "birth_year", "1850", "between 1900"),
]


@pytest.mark.parametrize(("row", "column", "value", "reason"), CASES, ids=[c[1] for c in CASES])
def test_each_error_is_reported_with_its_row(
    profiles: pl.DataFrame, tmp_path: Path, row: int, column: str, value: str | None, reason: str
) -> None:
    path = tmp_path / "bad.csv"
    put(as_text(profiles), row, column, value).write_csv(path)
    result = import_profiles(path)
    assert not result.ok and result.profiles.height == 0
    assert result.error_count == 1
    (error,) = result.errors
    assert (error.row, error.column, error.value) == (row, column, value)
    assert reason in error.reason


def test_duplicates_name_every_row(profiles: pl.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    put(as_text(profiles), 9, "customer_id", profiles["customer_id"][1]).write_csv(path)
    result = import_profiles(path)
    assert [(e.row, e.column) for e in result.errors] == [(2, "customer_id"), (9, "customer_id")]
    assert {e.reason for e in result.errors} == {"duplicate customer_id (rows 2, 9)"}


def test_a_missing_required_column_stops_the_whole_import(
    profiles: pl.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "no-tier.csv"
    as_text(profiles).drop("tier", "gender", "email").write_csv(path)
    result = import_profiles(path, quarantine=tmp_path / "q.parquet")
    assert not result.ok and not (tmp_path / "q.parquet").exists()
    assert [(e.row, e.column) for e in result.errors] == [(None, "tier")]
    assert "required" in result.errors[0].reason


def test_optional_columns_may_be_missing(profiles: pl.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "lean.csv"
    as_text(profiles).select(*REQUIRED_COLUMNS).write_csv(path)
    result = import_profiles(path)
    assert result.ok
    assert result.profiles["spend_12m"].null_count() == 40
    assert result.profiles["gender"].null_count() == 40


def test_error_list_is_capped_but_counted(profiles: pl.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    as_text(profiles).with_columns(spend_12m=pl.lit("-1")).write_csv(path)
    result = import_profiles(path, max_errors=5)
    assert len(result.errors) == 5 and result.error_count == 40
    assert [e.row for e in result.errors] == [1, 2, 3, 4, 5]


def test_quarantine_accounts_for_every_row(profiles: pl.DataFrame, tmp_path: Path) -> None:
    bad = as_text(profiles)
    for row, column, value, _ in CASES:
        bad = put(bad, row, column, value)
    bad = put(bad, 3, "tier", "none")  # a second problem on an already bad row
    path, rejects = tmp_path / "bad.csv", tmp_path / "rejects.parquet"
    bad.write_csv(path)
    result = import_profiles(path, quarantine=rejects)
    assert result.ok and result.quarantine == rejects and not rejects.exists()
    result.write_quarantine()
    written = pl.read_parquet(rejects)
    assert result.profiles.height + written.height == result.rows == 40
    assert written["_row"].to_list() == sorted(c[0] for c in CASES)
    assert written.row(0, named=True)["_reasons"] == [
        "spend_12m: negative, must be 0 or more",
        "tier: unknown value (expected basic, silver, gold, platinum)",
    ]
    assert set(written.columns) == {"_row", "_reasons", *PROFILE_SCHEMA}
    loaded = set(result.profiles["customer_id"])
    assert loaded.isdisjoint(written["customer_id"]) and len(loaded) == result.profiles.height


def test_nothing_loads_when_every_row_is_bad(profiles: pl.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    as_text(profiles).with_columns(tier=pl.lit("x")).write_csv(path)
    result = import_profiles(path, quarantine=tmp_path / "q.parquet")
    assert not result.ok and not (tmp_path / "q.parquet").exists()


SURVEY_MAPPING = """
as_of = 2026-01-01
timestamp_format = "%d/%m/%Y"
drop = ["Seat comfort"]

[columns]
customer_id = "id"
business_share = "Type of Travel"
tier = "Customer Type"
allowed_channels = "Channels"

[values.business_share]
"Business travel" = 1.0
"Personal Travel" = 0.0

[values.tier]
"Loyal Customer" = "gold"
"disloyal Customer" = "basic"

[constants]
language = "en"
preferred_channel = "email"
consent_marketing = false

[years_since]
tenure_years = "Member since"
"""


def survey(**changes: list[Any]) -> pl.DataFrame:
    """An airline satisfaction survey export, the shape analysts actually get."""
    columns: dict[str, list[Any]] = {
        "id": ["70172", "5047", "110028"],
        "Type of Travel": ["Personal Travel", "Business travel", "Business travel"],
        "Customer Type": ["Loyal Customer", "disloyal Customer", "Loyal Customer"],
        "Channels": ["email", "sms|email", "email|app"],
        "Member since": ["01/01/2016", "01/01/2024", "02/07/2025"],
        "Seat comfort": ["3", "1", "5"],
        "Flight Distance": ["460", "235", "1142"],
    }
    return pl.DataFrame({**columns, **changes})


def test_a_mapping_loads_a_foreign_export(tmp_path: Path) -> None:
    (tmp_path / "map.toml").write_text(SURVEY_MAPPING)
    survey().write_csv(tmp_path / "survey.csv")
    result = import_profiles(tmp_path / "survey.csv", tmp_path / "map.toml")
    assert result.ok, result.errors
    got = result.profiles
    assert got["customer_id"].to_list() == ["70172", "5047", "110028"]
    assert got["business_share"].to_list() == [0.0, 1.0, 1.0]
    assert got["tier"].cast(pl.String).to_list() == ["gold", "basic", "gold"]
    assert got["allowed_channels"].to_list() == [["email"], ["sms", "email"], ["email", "app"]]
    assert got["language"].cast(pl.String).unique().to_list() == ["en"]
    assert got["consent_marketing"].to_list() == [False] * 3
    assert got["tenure_years"].to_list() == [10.0, 2.0, 0.5]
    assert got.columns[len(PROFILE_SCHEMA) :] == ["Flight Distance"]  # extras kept, drop honoured


@pytest.mark.parametrize(
    ("column", "values", "row", "profile_column", "reason"),
    [
        ("Customer Type", ["Loyal Customer", "Gold", "Loyal Customer"], 2, "tier", "not in the"),
        ("Member since", ["01/01/2016", "yesterday", "01/01/2020"], 2, "tenure_years", "timestamp"),
        ("Member since", ["01/01/2016", "01/01/2020", "01/01/2030"], 3, "tenure_years", "negative"),
    ],
)
def test_mapped_values_fail_on_their_row(
    tmp_path: Path, column: str, values: list[str], row: int, profile_column: str, reason: str
) -> None:
    survey(**{column: values}).write_csv(tmp_path / "survey.csv")
    result = import_profiles(tmp_path / "survey.csv", parse_mapping(SURVEY_MAPPING))
    (error,) = result.errors
    assert (error.row, error.column, error.value) == (row, profile_column, values[row - 1])
    assert reason in error.reason


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[columns]\ncustomer = 'id'", "unknown profile columns: customer"),
        ("[colums]\ncustomer_id = 'id'", "colums"),
        ("[constants]\ntier = 'gold'\n[columns]\ntier = 'x'", "both a source and a constant"),
    ],
)
def test_bad_mappings_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(MappingError, match=fragment):
        parse_mapping(text)


def test_a_mapped_column_the_file_lacks_is_named(tmp_path: Path) -> None:
    survey().drop("Channels").write_csv(tmp_path / "survey.csv")
    result = import_profiles(tmp_path / "survey.csv", parse_mapping(SURVEY_MAPPING))
    assert [(e.row, e.column) for e in result.errors] == [(None, "allowed_channels")]
    assert "'Channels'" in result.errors[0].reason


def test_snapshots_are_numbered_atomic_and_loadable(profiles: pl.DataFrame, tmp_path: Path) -> None:
    snapshots = Snapshots(tmp_path)
    assert snapshots.latest() is None and snapshots.list() == []
    first = snapshots.save(profiles)
    second = snapshots.save(profiles.head(3))
    assert (first.name, second.name) == ("snapshot-0001.parquet", "snapshot-0002.parquet")
    assert snapshots.list() == [first, second] and snapshots.latest() == second
    assert snapshots.load(1).equals(profiles) and snapshots.load().height == 3
    assert sorted(p.name for p in (tmp_path / "profiles").iterdir()) == [first.name, second.name]
    with pytest.raises(LookupError, match="snapshot 7"):
        snapshots.load(7)


def test_book_finds_one_customer_by_id(profiles: pl.DataFrame, model: Segmentation) -> None:
    book = ProfileBook(profiles, model)
    one = book.one(profiles["customer_id"][7])
    assert one is not None and one["email"] == profiles["email"][7] and one["segment"]
    assert book.one("nobody") is None


def test_cli_import_writes_a_snapshot_and_show_masks_contacts(
    profiles: pl.DataFrame, tmp_path: Path
) -> None:
    path, data = tmp_path / "in.parquet", tmp_path / "data"
    profiles.write_parquet(path)
    runner = CliRunner()
    result = runner.invoke(cli, ["--data", str(data), "profiles", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "read 40 rows: 40 loaded, 0 rejected" in result.output
    assert Snapshots(data).load().equals(profiles)

    who = profiles.row(0, named=True)
    args = ["--data", str(data), "profiles", "show", who["customer_id"]]
    shown = runner.invoke(cli, args, terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert who["email"] not in shown.output and str(mask(who["email"])) in shown.output
    revealed = runner.invoke(cli, [*args, "--reveal"], terminal_width=200)
    assert who["email"] in revealed.output and who["phone"] in revealed.output
    missing = runner.invoke(cli, ["--data", str(data), "profiles", "show", "nobody"])
    assert missing.exit_code != 0 and "no profile 'nobody'" in missing.output


def test_cli_import_failure_writes_nothing(profiles: pl.DataFrame, tmp_path: Path) -> None:
    path, data = tmp_path / "bad.csv", tmp_path / "data"
    put(put(as_text(profiles), 4, "tier", "diamond"), 6, "spend_12m", "-3").write_csv(path)
    result = CliRunner().invoke(
        cli, ["--data", str(data), "profiles", "import", str(path)], terminal_width=200
    )
    assert result.exit_code == 1
    assert "diamond" in result.output and "'-3'" in result.output
    assert "nothing written" in result.output
    assert not data.exists() or not any(data.rglob("*.parquet"))

    rejects = tmp_path / "rejects.parquet"
    args = ["--data", str(data), "profiles", "import", str(path), "--quarantine", str(rejects)]
    loaded = CliRunner().invoke(cli, args, terminal_width=200)
    assert loaded.exit_code == 0, loaded.output
    assert "38 loaded, 2 rejected" in loaded.output
    assert Snapshots(data).load().height == 38 and pl.read_parquet(rejects).height == 2


def test_derived_profiles_round_trip_through_csv_with_numeric_extras(tmp_path: Path) -> None:
    data = tmp_path / "data"
    csv = tmp_path / "derived.csv"
    slice_ = Path(__file__).parent / "data" / "retail_slice.parquet"
    runner = CliRunner()
    derived = runner.invoke(
        cli,
        [
            "--data",
            str(data),
            "profiles",
            "derive",
            str(slice_),
            "--customer",
            "CustomerID",
            "--time",
            "InvoiceDate",
            "--amount",
            "Quantity*UnitPrice",
            "--invoice",
            "InvoiceNo",
            "-o",
            str(csv),
        ],
    )
    assert derived.exit_code == 0, derived.output
    assert csv.read_text().startswith("customer_id,")  # a real CSV, not Parquet
    result = import_profiles(csv)
    assert result.ok and result.profiles is not None
    loaded = result.profiles
    assert loaded.schema["recency_days"] == pl.Float64  # extra columns stay numbers
    assert loaded.schema["basket_items_mean"] == pl.Float64
    assert loaded["allowed_channels"].list.len().min() == 1


def _bomb(path: Path, far_cell: str) -> Path:
    """A few kilobytes of XLSX whose first sheet spans from A1 to `far_cell`."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["A1"] = "customer_id"
    sheet[far_cell] = "x"
    book.save(path)
    return path


@pytest.mark.parametrize(
    ("far_cell", "said"),
    [
        ("CV40000", "40,000 rows x 100 columns"),  # 4 million cells from ~5 KB
        ("XFD1048576", "16,384 columns"),  # the last cell Excel has
    ],
)
def test_an_xlsx_bomb_is_refused_before_its_cells_are_built(
    tmp_path: Path, far_cell: str, said: str
) -> None:
    path = _bomb(tmp_path / "bomb.xlsx", far_cell)
    assert path.stat().st_size < 20_000
    result = import_profiles(path)
    assert not result.ok
    assert said in result.errors[0].reason
    assert "use CSV or Parquet" in result.errors[0].reason or "at most 1,000" in (
        result.errors[0].reason
    )


def test_a_file_of_too_many_columns_is_refused_naming_the_count(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(5_000)) + "\n" + ",".join("1" * 5_000) + "\n")
    result = import_profiles(path)
    assert not result.ok
    assert "5,000 columns, at most 1,000" in result.errors[0].reason


def test_an_ordinary_xlsx_still_imports(profiles: pl.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    as_text(profiles).write_excel(path)
    assert import_profiles(path).profiles.height == profiles.height
