"""TOML, CSV and XLSX forms of an offer table round-trip exactly, and read like a sheet."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offers.catalog.fields import Range
from offers.catalog.tables import (
    OfferTable,
    Perk,
    Rule,
    Stock,
    TableError,
    decode_table,
    dump_table,
    load_default_table,
)
from offers.catalog.tabular import (
    perks_path,
    read_table_file,
    table_frames,
    table_from_frames,
    write_table_file,
)

FORMATS = [".toml", ".csv", ".xlsx"]


def round_trip(table: OfferTable, path: Path) -> OfferTable:
    write_table_file(table, path)
    return read_table_file(path)[0]


def stocked_table() -> OfferTable:
    base = load_default_table()
    lounge = next(p for p in base.perks if p.id == "lounge-1h")
    stocked = Perk(
        **{f: getattr(lounge, f) for f in Perk.__struct_fields__ if f != "stock"},
        stock=[Stock(airport="TPE", per_day=40), Stock(airport="HKG", per_day=0)],
    )
    rules = [
        Rule(
            id="biz-share",
            perk="lounge-1h",
            alternatives=["dutyfree-10", "miles-2000"],
            priority=3,
            per_customer_limit=2,
            when={
                "business_share": Range(min=0.5),
                "consent_marketing": True,
                "delay_minutes": Range(min=30.5, max=1e6),
                "channel": ["sms", "app"],
            },
            description='quoted "text", commas, and\na line break',
        ),
        *base.rules,
    ]
    return OfferTable(
        name=base.name,
        hit_policy="priority",
        perks=[stocked if p.id == "lounge-1h" else p for p in base.perks],
        rules=rules,
    )


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("make", [load_default_table, stocked_table], ids=["default", "rich"])
def test_every_format_round_trips_exactly(tmp_path: Path, suffix: str, make: object) -> None:
    table = make()  # type: ignore[operator]
    assert round_trip(table, tmp_path / f"table{suffix}") == table


def test_the_rules_sheet_reads_like_a_spreadsheet(tmp_path: Path) -> None:
    write_table_file(load_default_table(), tmp_path / "t.csv")
    rules = pl.read_csv(tmp_path / "t.csv", infer_schema=False)
    assert rules.columns[:10] == [
        "table",
        "hit_policy",
        "incidents",
        "id",
        "perk",
        "alternatives",
        "priority",
        "per_customer_limit",
        "fallback",
        "description",
    ]
    assert rules.columns[10:12] == ["when.persona", "when.step.min"]
    assert rules["incidents"][0] == "flight_delay, cancellation, missed_connection"
    biz = rules.row(by_predicate=pl.col("id") == "biz-seat", named=True)
    assert biz["when.persona"] == "business"
    assert biz["when.step.min"] == "2" and biz["when.step.max"] is None
    assert biz["alternatives"] is None
    later = rules.row(by_predicate=pl.col("id") == "later-miles", named=True)
    assert later["alternatives"] == "dutyfree-5"
    perks = pl.read_csv(perks_path(tmp_path / "t.csv"), infer_schema=False)
    assert {"title.en", "title.zh-Hant", "stock"} <= set(perks.columns)
    assert perks.row(0, named=True)["value"] == "12"


def test_a_marketer_edits_a_cell_and_imports_it(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write_table_file(load_default_table(), path)
    rules = pl.read_csv(path, infer_schema=False).with_columns(
        perk=pl.when(pl.col("id") == "biz-lounge").then(pl.lit("meal-12")).otherwise("perk"),
        table=pl.when(pl.int_range(pl.len()) == 0).then("table"),  # only the first row
    )
    blank = pl.DataFrame([[None] * rules.width], schema=rules.schema, orient="row")
    pl.concat([rules, blank]).write_csv(path)  # a stray empty row is ignored
    table, body = read_table_file(path)
    assert next(r for r in table.rules if r.id == "biz-lounge").perk == "meal-12"
    assert decode_table(body) == table


def test_xlsx_numbers_are_numbers_and_typed_cells_read_back(tmp_path: Path) -> None:
    import openpyxl

    path = tmp_path / "t.xlsx"
    write_table_file(load_default_table(), path)
    book = openpyxl.load_workbook(path)
    # personas, then the dropdowns' values on a hidden sheet
    assert book.sheetnames == ["rules", "perks", "personas", "lists"]
    assert book["lists"].sheet_state == "hidden"
    personas = book["personas"]
    assert [c.value for c in personas[1]][:4] == [
        "id",
        "description",
        "segments",
        "traits.business_share.min",
    ]
    assert personas["D2"].value == 0.5  # business: business_share at least 0.5, a number
    perks = book["perks"]
    assert perks["C2"].value == 12  # value of meal-12, a real number
    perks["G2"].value = False  # a spreadsheet boolean, as Excel stores one
    book.save(path)
    table, _ = read_table_file(path)
    assert table.perk("meal-12").usable_now is False


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"priority": "high"}, "rule biz-lounge, field priority"),
        ({"when.segment": "road-warrior,,x"}, "rule biz-lounge, field when.segment"),
        ({"table": "other"}, "rules row 18, field table"),
        ({"fallback": "maybe"}, "rule biz-lounge, field fallback"),
        ({"surprise": "x"}, "unknown column 'surprise'"),
    ],
)
def test_bad_cells_are_refused_naming_rule_and_field(
    tmp_path: Path, edit: dict[str, str], message: str
) -> None:
    rules, perks = table_frames(load_default_table())
    rules = rules.with_columns(
        pl.when(pl.col("id") == "biz-lounge")
        .then(pl.lit(v))
        .otherwise(pl.col(k) if k in rules.columns else None)
        .alias(k)
        for k, v in edit.items()
    )
    with pytest.raises(TableError) as info:
        table_from_frames(rules, perks, "t.csv")
    assert message in str(info.value)


def test_missing_perks_file_and_unknown_format_are_named(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("table,id,perk\nt,r,meal\n")
    with pytest.raises(TableError, match=r"t\.perks\.csv is missing"):
        read_table_file(tmp_path / "t.csv")
    with pytest.raises(TableError, match="unknown format"):
        read_table_file(tmp_path / "t.csv".replace(".csv", ".ods"))


def test_a_table_without_rules_keeps_its_name(tmp_path: Path) -> None:
    table = OfferTable(name="empty", hit_policy="priority", perks=[], rules=[])
    for suffix in FORMATS:
        assert round_trip(table, tmp_path / f"e{suffix}") == table


# --- generated tables ------------------------------------------------------------------

ids = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,12}", fullmatch=True)
words = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 :;_/-]{0,10}[A-Za-z0-9]", fullmatch=True).filter(
    lambda s: s.lower() not in ("true", "false")
)
numbers = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
bounds = st.one_of(
    st.builds(Range, min=numbers, max=st.none() | numbers),
    st.builds(Range, min=st.none(), max=numbers),
)
conditions = st.one_of(st.booleans(), st.lists(words, min_size=1, max_size=3), bounds)
columns = st.sampled_from(["segment", "step", "tier", "delay_minutes", "business_share", "x_1"])
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
    | st.sampled_from("\t\n"),
    max_size=30,
)
titles = st.dictionaries(
    st.sampled_from(["en", "zh-Hans", "zh-Hant", "ja"]),
    texts.filter(lambda s: s.strip() == s and s != ""),
    max_size=3,
)
perks = st.builds(
    Perk,
    id=ids,
    kind=st.sampled_from(["voucher", "meal", "miles", "lounge_pass"]),
    value=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    cost=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    currency=st.sampled_from(["EUR", "TWD"]),
    validity_days=st.integers(0, 10_000),
    usable_now=st.booleans(),
    title=titles,
    stock=st.lists(
        st.builds(
            Stock, airport=st.from_regex(r"[A-Z]{3}", fullmatch=True), per_day=st.integers(0, 999)
        ),
        max_size=2,
    ),
)
rules = st.builds(
    Rule,
    id=ids,
    perk=ids,
    alternatives=st.lists(ids, max_size=2),
    priority=st.integers(-1000, 1000),
    per_customer_limit=st.none() | st.integers(1, 99),
    fallback=st.booleans(),
    when=st.dictionaries(columns, conditions, max_size=3),
    description=texts,
)
tables = st.builds(
    OfferTable,
    name=ids,
    hit_policy=st.sampled_from(["first", "priority"]),
    perks=st.lists(perks, max_size=3),
    rules=st.lists(rules, max_size=4),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(table=tables)
def test_generated_tables_round_trip_through_every_form(tmp_path: Path, table: OfferTable) -> None:
    assert decode_table(dump_table(table)) == table
    rules_frame, perks_frame = table_frames(table)
    assert table_from_frames(rules_frame, perks_frame) == table
    for suffix in (".csv", ".xlsx"):
        assert round_trip(table, tmp_path / f"g{suffix}") == table
