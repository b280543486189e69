"""Checking a spreadsheet: every finding at once, each at its sheet, row, cell and column.

Reading a table (`offers.catalog.tabular`) stops at the first thing that cannot be read;
a marketer fixing a workbook wants the whole list. Here each cell that cannot be read (a
word where a number goes, `maybe` for a yes/no) is a finding, each row is read on its own
(a broken row does not hide the next), unknown columns are named with the nearest known
one, and every finding of validation (`offers.catalog.validate`) is traced back to the
row of its rule or perk and the cell of its field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import polars as pl

from offers.catalog.case_sheet import read_case_sheet
from offers.catalog.cases import Case
from offers.catalog.findings import Finding, did_you_mean
from offers.catalog.persona_sheet import personas_from_frame
from offers.catalog.tables import OfferTable, Perk, Rule, TableError, canonical
from offers.catalog.tabular import (
    _BOOLS,
    _FLOATS,
    _INTS,
    _SETTINGS,
    PERK_COLUMNS,
    RULE_COLUMNS,
    _perk_builtins,
    _rule_builtins,
    csv_frames,
    perks_path,
)
from offers.catalog.validate import Checks, default_columns
from offers.catalog.workbook import sheet_frame
from segmentation.profiles import LANGUAGES

__all__ = ["check_file", "check_frames", "column_letter"]


def column_letter(index: int) -> str:
    """A spreadsheet's name for the 0-based column `index`: A, B, ..., Z, AA, AB, ..."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


class _Sheet:
    """One sheet's header and rows, to say where a finding is."""

    def __init__(self, name: str, frame: pl.DataFrame, table: str) -> None:
        self.name, self.frame, self.table = name, frame, table
        self.columns = {c: i for i, c in enumerate(frame.columns)}
        self.findings: list[Finding] = []

    def at(self, row: int, column: str | None) -> dict[str, Any]:
        where: dict[str, Any] = {"sheet": self.name, "row": row}
        if column is not None and column in self.columns:
            where |= {"cell": f"{column_letter(self.columns[column])}{row}", "column": column}
        return where

    def add_at(self, code: str, message: str, row: int, column: str | None, **who: Any) -> None:
        """A cell's finding; its `field` is the column, as validation names fields."""
        self.add(code, message, row, column, **who, field=column)

    def add(self, code: str, message: str, row: int, column: str | None, **who: Any) -> None:
        self.findings.append(
            Finding(
                severity="error",
                code=code,
                table=self.table,
                message=message,
                **who,
                **self.at(row, column),
            )
        )


def _header(
    sheet: _Sheet, fixed: tuple[str, ...], prefixes: tuple[str, ...], known: set[str]
) -> None:
    for column in sheet.frame.columns:
        if column not in fixed and not column.startswith(prefixes):
            sheet.add(
                "unknown-column",
                f"unknown column {column!r}{did_you_mean(column, known)}",
                1,
                column,
            )


def _cells(
    sheet: _Sheet, row: int, raw: dict[str, Any], texts: dict[str, Any], who: dict[str, Any]
) -> None:
    """Cells whose text could not become what their column holds: found, then replaced by
    a harmless stand-in so the rest of the row is still read (the table is not used)."""
    for key, text in texts.items():
        if text is None:
            continue
        if key.startswith("when.") and key.endswith((".min", ".max")):
            bound = raw.get("when", {}).get(key[5:-4])
            value = bound.get(key[-3:]) if isinstance(bound, dict) else None
            if isinstance(value, str):
                sheet.add_at("not-a-number", f"{text!r} is not a number", row, key, **who)
                bound[key[-3:]] = 0.0
            continue
        value = raw.get(key)
        if key in _INTS and isinstance(value, str):
            sheet.add_at("not-a-number", f"{text!r} is not a whole number", row, key, **who)
        elif key in _FLOATS and isinstance(value, str):
            sheet.add_at("not-a-number", f"{text!r} is not a number", row, key, **who)
        elif key in _BOOLS and isinstance(value, str):
            sheet.add_at("not-yes-no", f"{text!r}: write true or false", row, key, **who)
        else:
            continue
        raw[key] = 1 if key in _INTS else 0.0 if key in _FLOATS else False


def _path_column(exc: msgspec.ValidationError, prefix: str) -> str | None:
    """The column a msgspec error points at (`... - at `$.kind``)."""
    text = str(exc)
    if "at `$." not in text:
        return None
    path = text.rsplit("at `$.", 1)[1].rstrip("`")
    head = path.split("[", 1)[0].split(".", 1)[0]
    if head == "when":
        return "when." + path.split(".", 2)[1] if path.count(".") else None
    if head == "title":
        return "title." + path.split(".", 1)[1] if "." in path else None
    return head if head else prefix


def _rows(sheet: _Sheet, kind: type[Rule] | type[Perk]) -> tuple[list[Any], dict[str, int]]:
    """Each non-blank row read on its own: (the rows that could be read, id -> row)."""
    read: list[Any] = []
    where: dict[str, int] = {}
    builtins = _rule_builtins if kind is Rule else _perk_builtins
    for number, texts in enumerate(sheet.frame.iter_rows(named=True), start=2):
        texts = {k: v for k, v in texts.items() if k in sheet.columns}
        if all(v is None for k, v in texts.items() if k not in _SETTINGS):
            continue
        ident = texts.get("id")
        who = {"rule" if kind is Rule else "perk": ident} if ident else {}
        if ident:
            where.setdefault(ident, number)
        try:
            raw = builtins(texts)
        except TableError as exc:
            sheet.add("unreadable", str(exc), number, None, **who)
            continue
        _cells(sheet, number, raw, texts, who)
        try:
            read.append(msgspec.convert(raw, kind))
        except msgspec.ValidationError as exc:
            message = str(exc).split(" - at `", 1)[0]
            sheet.add_at("unreadable", message, number, _path_column(exc, "id"), **who)
    return read, where


def check_frames(
    rules: pl.DataFrame,
    perks: pl.DataFrame,
    source: str,
    checks: Checks | None = None,
    sheets: tuple[str, str] = ("rules", "perks"),
    personas: pl.DataFrame | None = None,
    like: OfferTable | None = None,
    cases: list[Case] | None = None,
) -> tuple[OfferTable | None, list[Finding]]:
    """(the table, or None when some cell could not be read; every finding, located in
    `sheets`: the names of the rules' and the perks' sheet, or files). A table's
    `personas` sheet is read whole: a problem there names its row and field. With `like`,
    the table keeps its incident kinds, personas and example cases (for grids that do not
    show them); `cases` are a workbook's example cases."""
    names = [t for t in rules["table"].to_list() if t] if "table" in rules.columns else []
    name = names[0] if names else source
    rule_sheet, perk_sheet = _Sheet(sheets[0], rules, name), _Sheet(sheets[1], perks, name)
    conditions = {f"when.{c}" for c in (checks or Checks()).known_columns or default_columns()}
    _header(rule_sheet, RULE_COLUMNS, ("when.",), {*RULE_COLUMNS, *conditions})
    titles = {f"title.{lang}" for lang in LANGUAGES}
    _header(perk_sheet, (*PERK_COLUMNS, "stock"), ("title.",), {*PERK_COLUMNS, *titles})
    if not names:
        rule_sheet.add("no-name", "the first row needs the table's name in `table`", 2, "table")
    read_rules, rule_rows = _rows(rule_sheet, Rule)
    read_perks, perk_rows = _rows(perk_sheet, Perk)
    unread = rule_sheet.findings + perk_sheet.findings
    settings = {
        k: next((v for v in rules[k].to_list() if v), None) if k in rules.columns else None
        for k in _SETTINGS
    }
    raw: dict[str, Any] = {"name": name, "hit_policy": settings["hit_policy"] or "first"}
    if settings["incidents"]:
        raw["incidents"] = [x.strip() for x in settings["incidents"].split(",")]
    try:
        if personas is not None:
            raw["personas"] = personas_from_frame(personas, source)
        table = msgspec.structs.replace(
            msgspec.convert(raw, OfferTable), perks=read_perks, rules=read_rules
        )
        if like is not None:
            table = msgspec.structs.replace(
                table, incidents=like.incidents, personas=like.personas, cases=like.cases
            )
        if cases is not None:
            table = msgspec.structs.replace(table, cases=cases)
        table = canonical(table)
    except msgspec.ValidationError as exc:
        message = str(exc).split(" - at `", 1)[0]
        rule_sheet.add("unreadable", message, 2, _path_column(exc, "table"))
        return None, rule_sheet.findings + perk_sheet.findings
    except TableError as exc:
        rule_sheet.add("unreadable", str(exc), 2, None)
        return None, rule_sheet.findings + perk_sheet.findings
    missing_perks = {f.perk for f in perk_sheet.findings if f.perk}
    found = []
    for f in (checks or Checks()).run(table):
        if f.code == "unknown-perk" and any(f"{p!r}" in f.message for p in missing_perks):
            continue  # its row could not be read: already said
        if f.rule is not None and f.rule in rule_rows:
            f = msgspec.structs.replace(f, **rule_sheet.at(rule_rows[f.rule], f.field))
        elif f.perk is not None and f.perk in perk_rows:
            f = msgspec.structs.replace(f, **perk_sheet.at(perk_rows[f.perk], f.field or "id"))
        found.append(f)
    return (None if unread else table), unread + found


def check_file(path: Path, checks: Checks | None = None) -> tuple[OfferTable | None, list[Finding]]:
    """A CSV (with its perks file) or XLSX workbook checked cell by cell; see check_frames."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        path, rules, perks, personas = csv_frames(path)
        sheets = (path.name, perks_path(path).name)
        return check_frames(rules, perks, path.name, checks, sheets, personas)
    if suffix == ".xlsx":
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            rules = sheet_frame(book, "rules", path.name)
            perks = sheet_frame(book, "perks", path.name)
            has_personas = "personas" in book.sheetnames
            personas = sheet_frame(book, "personas", path.name) if has_personas else None
        finally:
            book.close()
        cases = read_case_sheet(path)  # a broken cases sheet: one error naming its row
        return check_frames(
            rules, perks, path.name, checks, ("rules", "perks"), personas, None, cases
        )
    raise TableError(f"{path.name}: not a spreadsheet (use .csv or .xlsx)")
