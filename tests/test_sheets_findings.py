"""Spreadsheets that help: every finding at once with its sheet, row, cell and column and a
"did you mean"; dropdowns in the exported workbook, read back with openpyxl."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from offers.catalog import Checks, check_file, load_default_table, write_table_file
from tests.test_tables_lifecycle import run

SEGMENTS = frozenset(
    {"road-warrior", "premium-business", "leisure-family", "duty-free-shopper", "occasional-flyer"}
)


def _edit(path: Path, sheet: str, edits: dict[tuple[str, str], str]) -> None:
    """Set cells by (row id, column name), adding the column if it is new."""
    book = openpyxl.load_workbook(path)
    rows = book[sheet]
    header = [c.value for c in rows[1]]
    for (ident, column), value in edits.items():
        if column not in header:
            header.append(column)
            rows.cell(row=1, column=len(header), value=column)
        for row in rows.iter_rows(min_row=2):
            if row[header.index("id")].value == ident:
                rows.cell(row=row[0].row, column=header.index(column) + 1, value=value)
    book.save(path)


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / "offers.xlsx"
    write_table_file(load_default_table(), path)
    _edit(
        path,
        "rules",
        {
            ("biz-lounge", "perk"): "lounge-1hr",
            ("biz-lounge", "priority"): "high",
            ("shopper-5", "fallback"): "maybe",
            ("biz-upgrade", "when.segment"): "road-warior",
            ("family-meal-50", "when.tierr"): "gold",
        },
    )
    _edit(path, "perks", {("meal-12", "value"): "lots", ("miles-1000", "kind"): "massage"})
    return path


def cell_of(path: Path, sheet: str, ident: str, column: str) -> str:
    """The spreadsheet name of the cell in `column` of the row whose id is `ident`."""
    rows = openpyxl.load_workbook(path)[sheet]
    header = [c.value for c in rows[1]]
    ids = header.index("id")
    row = next(r[0].row for r in rows.iter_rows(min_row=2) if r[ids].value == ident)
    return f"{openpyxl.utils.get_column_letter(header.index(column) + 1)}{row}"


def test_every_finding_at_once_each_at_its_cell(broken: Path) -> None:
    table, findings = check_file(broken, Checks(segment_names=SEGMENTS))
    assert table is None  # some cells cannot be read: nothing to publish
    located = {(f.sheet, f.cell, f.column): f.message for f in findings if f.severity == "error"}

    def at(ident: str, column: str) -> tuple[str, str, str]:
        return ("rules", cell_of(broken, "rules", ident, column), column)

    assert located[at("biz-lounge", "perk")] == (
        "unknown perk 'lounge-1hr' (did you mean 'lounge-1h'?)"
    )
    assert located[at("biz-lounge", "priority")] == "'high' is not a whole number"
    assert located[at("shopper-5", "fallback")] == "'maybe': write true or false"
    assert "(did you mean 'road-warrior'?)" in located[at("biz-upgrade", "when.segment")]
    tier = next(m for (s, _c, col), m in located.items() if col == "when.tierr")
    assert tier == "unknown column 'tierr' (did you mean 'tier'?)"
    perks = {(c, col): m for (s, c, col), m in located.items() if s == "perks"}
    assert perks[("C2", "value")] == "'lots' is not a number"  # meal-12 is the first perk
    assert any(col == "kind" and "massage" in m for (_c, col), m in perks.items())
    assert len(located) >= 7


def test_validate_prints_each_finding_with_its_place(broken: Path, tmp_path: Path) -> None:
    out = run(tmp_path / "data", "offers", "validate", str(broken), code=1)
    words = " ".join(out.replace("│", " ").split())  # the table's cells, unwrapped
    perk = cell_of(broken, "rules", "biz-lounge", "perk")
    assert f"rules!{perk} (perk)" in out and "perks!C2 (value)" in out
    for word in ("'lounge-1hr'", "'lounge-1h'?)", "'lots'", "'high'", "'maybe':", "'massage'"):
        assert word in words
    assert "Traceback" not in out and "ValidationError" not in out


def test_a_csv_finding_names_its_file_and_cell(tmp_path: Path) -> None:
    path = tmp_path / "offers.csv"
    write_table_file(load_default_table(), path)
    text = path.read_text().replace(",biz-lounge,lounge-1h,", ",biz-lounge,lounge-2h,", 1)
    path.write_text(text)
    _, findings = check_file(path, Checks())
    (found,) = [f for f in findings if f.code == "unknown-perk"]
    assert found.sheet == "offers.csv" and found.column == "perk" and found.cell is not None
    assert found.cell.startswith("E") and found.row == int(found.cell[1:])  # E: perk


def test_the_workbook_has_dropdowns_for_perks_segments_personas_and_yes_no(
    tmp_path: Path,
) -> None:
    path = tmp_path / "offers.xlsx"
    table = load_default_table()
    personas = sorted(p.id for p in table.personas)
    write_table_file(table, path, choices={"segment": sorted(SEGMENTS), "persona": personas})
    book = openpyxl.load_workbook(path)
    lists = book["lists"]
    assert lists.sheet_state == "hidden"
    columns = {c[0].value: [x.value for x in c[1:] if x.value] for c in lists.iter_cols()}
    assert columns["perk"] == sorted(p.id for p in table.perks)
    assert columns["when.segment"] == sorted(SEGMENTS)
    assert columns["when.persona"] == personas == ["business", "family", "shopper"]

    def validation(sheet: str, column: str) -> openpyxl.worksheet.datavalidation.DataValidation:
        rows = book[sheet]
        letter = openpyxl.utils.get_column_letter([c.value for c in rows[1]].index(column) + 1)
        return next(v for v in rows.data_validations.dataValidation if f"{letter}2" in v.sqref)

    perk = validation("rules", "perk")
    assert perk.type == "list" and perk.formula1 == f"lists!$A$2:$A${len(table.perks) + 1}"
    assert perk.errorStyle in (None, "stop")
    persona = validation("rules", "when.persona")  # the table's rules name personas
    assert persona.formula1 == "lists!$C$2:$C$4" and persona.errorStyle == "information"
    assert validation("rules", "fallback").formula1 == '"true,false"'
    assert validation("perks", "usable_now").formula1 == '"true,false"'
    assert "lounge_pass" in validation("perks", "kind").formula1
    again, findings = check_file(path, Checks(segment_names=SEGMENTS))
    assert again == table and not [f for f in findings if f.severity == "error"]


def test_import_of_a_broken_workbook_lists_every_cell_and_saves_nothing(
    broken: Path, tmp_path: Path
) -> None:
    out = run(tmp_path / "data", "offers", "import", str(broken), code=1)
    assert "perks!C2 (value)" in out and "'high'" in out and "'maybe':" in out
    assert "not imported, some cells cannot be read" in " ".join(out.split())
    assert "draft of" not in out
