"""Offer tables as spreadsheets: CSV and XLSX that round-trip exactly to the TOML form.

Layout, for people who live in spreadsheets:

* **rules** (the `rules` sheet, or `NAME.csv`): one row per rule, in evaluation order.
  Columns: `table`, `hit_policy` and `incidents` (name, `first`/`priority`, incident kinds;
  only the first row needs them), `id`, `perk`, `alternatives` (other perks the engine may
  learn to offer instead, comma-separated), `priority`, `per_customer_limit`, `fallback`,
  `description`, then one column per condition:
  - `when.COLUMN` holds values, comma-separated (`road-warrior, premium-business`),
    or `true`/`false` for yes/no columns;
  - `when.COLUMN.min` and `when.COLUMN.max` hold an inclusive range (either may be empty).
  An empty cell means "no condition on this column".
* **perks** (the `perks` sheet, or `NAME.perks.csv` next to the rules file): one row per
  perk: `id`, `kind`, `value`, `cost`, `currency`, `validity_days`, `usable_now`, one
  `title.LANG` column per language (`title.en`, `title.zh-Hant`…), and `stock` as
  `AIRPORT:PER_DAY` pairs (`TPE:40, HKG:20`).
* **personas** (sheet, or `NAME.personas.csv`) if the table has any: see persona_sheet.
Blank rows are ignored; unknown columns are refused, so nothing typed is silently lost.
Numbers are written as spreadsheet numbers when that is exact, else as text. In CSV a text
cell that a spreadsheet would run as a formula (`=…`, `+…`, `-…`, `@…`) is written with a
`'` in front, which reading takes off again. XLSX keeps example cases on a `cases` sheet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from offers.catalog.case_sheet import add_case_sheet, with_case_sheet
from offers.catalog.cells import bool_cell, cell, check_header, parse_number
from offers.catalog.fields import Range
from offers.catalog.persona_sheet import persona_frame, personas_from_frame
from offers.catalog.tables import OfferTable, TableError, decode_table, dump_table
from offers.catalog.tables import table_from_builtins as _from_builtins
from offers.catalog.workbook import add_pick_lists, sheet_frame
from segmentation.cells import guard_frame, unguard_frame

__all__ = [
    "FORMATS",
    "csv_frames",
    "perks_path",
    "read_csv",
    "read_table_file",
    "read_xlsx",
    "table_frames",
    "table_from_frames",
    "write_csv",
    "write_table_file",
    "write_xlsx",
]

FORMATS = (".toml", ".csv", ".xlsx")
RULE_COLUMNS = (
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
)
PERK_COLUMNS = ("id", "kind", "value", "cost", "currency", "validity_days", "usable_now")
_INTS = {"priority", "per_customer_limit", "validity_days"}
_FLOATS = {"value", "cost"}
_LISTS = {"alternatives"}
_BOOLS = {"fallback", "usable_now"}


# --- table -> frames -----------------------------------------------------------------


_SETTINGS = ("table", "hit_policy", "incidents")


def _settings(table: OfferTable) -> dict[str, str | None]:
    """The table-wide cells (name, hit policy, incident kinds) every rules row repeats."""
    return {"table": table.name, "hit_policy": table.hit_policy, "incidents": cell(table.incidents)}


def table_frames(table: OfferTable) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rules, perks) frames of text cells, columns as described in the module docstring."""
    when_columns: list[str] = []
    for rule in table.rules:
        for column, cond in rule.when.items():
            names = (
                [f"when.{column}.min", f"when.{column}.max"]
                if isinstance(cond, Range)
                else [f"when.{column}"]
            )
            when_columns += [n for n in names if n not in when_columns]
    first = {
        "when.persona": 0,
        "when.segment": 0,
        "when.step": 1,
        "when.step.min": 1,
        "when.step.max": 1,
    }
    when_columns.sort(key=lambda c: first.get(c, 2))
    rows: list[dict[str, str | None]] = []
    for rule in table.rules:
        row: dict[str, str | None] = {
            **_settings(table),
            **{f: cell(getattr(rule, f)) for f in RULE_COLUMNS[3:]},
        }
        row["description"] = rule.description or None
        for column, cond in rule.when.items():
            if isinstance(cond, Range):
                row[f"when.{column}.min"] = cell(cond.min)
                row[f"when.{column}.max"] = cell(cond.max)
            else:
                row[f"when.{column}"] = cell(cond)
        rows.append(row)
    if not rows:  # a table without rules still keeps its name and policy
        rows.append(_settings(table))
    header = [*RULE_COLUMNS, *when_columns]
    rules = pl.DataFrame(
        {c: [r.get(c) for r in rows] for c in header}, schema=dict.fromkeys(header, pl.String)
    )
    languages: list[str] = []
    for perk in table.perks:
        languages += [lang for lang in perk.title if lang not in languages]
    perk_header = [*PERK_COLUMNS, *(f"title.{lang}" for lang in languages), "stock"]
    perk_rows = [
        {
            **{f: cell(getattr(p, f)) for f in PERK_COLUMNS},
            **{f"title.{lang}": p.title.get(lang) for lang in languages},
            "stock": ", ".join(f"{s.airport}:{s.per_day}" for s in p.stock) or None,
        }
        for p in table.perks
    ]
    perks = pl.DataFrame(
        {c: [r[c] for r in perk_rows] for c in perk_header},
        schema=dict.fromkeys(perk_header, pl.String),
    )
    return rules, perks


# --- frames -> table -----------------------------------------------------------------


def _rule_builtins(row: dict[str, str | None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    when: dict[str, Any] = {}
    for key, text in row.items():
        if text is None or key in _SETTINGS:
            continue
        if key.startswith("when."):
            column = key[5:]
            if column.endswith((".min", ".max")):
                bound = when.setdefault(column[:-4], {})
                if isinstance(bound, dict):
                    bound[column[-3:]] = parse_number(text, float)
                else:
                    raise TableError(f"field when.{column[:-4]}: both values and a range")
            elif column in when:
                raise TableError(f"field when.{column}: both values and a range")
            else:
                value = bool_cell(text)
                when[column] = (
                    value if isinstance(value, bool) else [v.strip() for v in text.split(",")]
                )
        elif key in _INTS:
            out[key] = parse_number(text, int)
        elif key in _FLOATS:
            out[key] = parse_number(text, float)
        elif key in _BOOLS:
            out[key] = bool_cell(text)
        elif key in _LISTS:
            out[key] = [v.strip() for v in text.split(",")]
        else:
            out[key] = text
    if when:
        out["when"] = when
    return out


def _perk_builtins(row: dict[str, str | None]) -> dict[str, Any]:
    out: dict[str, Any] = {"title": {}}
    for key, text in row.items():
        if text is None:
            continue
        if key.startswith("title."):
            out["title"][key[6:]] = text
        elif key == "stock":
            stock = []
            for pair in text.split(","):
                airport, _, per_day = pair.strip().partition(":")
                stock.append({"airport": airport.strip(), "per_day": parse_number(per_day, int)})
            out["stock"] = stock
        elif key in _INTS:
            out[key] = parse_number(text, int)
        elif key in _FLOATS:
            out[key] = parse_number(text, float)
        elif key in _BOOLS:
            out[key] = bool_cell(text)
        else:
            out[key] = text
    return out


def table_from_frames(
    rules: pl.DataFrame,
    perks: pl.DataFrame,
    source: str = "spreadsheet",
    personas: pl.DataFrame | None = None,
) -> OfferTable:
    """Read (rules, perks[, personas]) frames of text back into a table; errors name the rule
    and field."""
    check_header(rules.columns, RULE_COLUMNS, ("when.",), "rules", source)
    check_header(perks.columns, (*PERK_COLUMNS, "stock"), ("title.",), "perks", source)
    settings: dict[str, str] = {}
    raw_rules = []
    for number, row in enumerate(rules.iter_rows(named=True), start=2):
        for key in _SETTINGS:
            text = row.get(key)
            if text is not None and settings.setdefault(key, text) != text:
                raise TableError(
                    f"{source}: rules row {number}, field {key}: {text!r} differs from "
                    f"{settings[key]!r} above"
                )
        if all(v is None for k, v in row.items() if k not in _SETTINGS):
            continue
        try:
            raw_rules.append(_rule_builtins(row))
        except TableError as exc:
            where = row.get("id") or f"on row {number}"
            raise TableError(f"{source}: rule {where}, {exc}") from exc
    raw_perks = [
        _perk_builtins(row)
        for row in perks.iter_rows(named=True)
        if any(v is not None for v in row.values())
    ]
    if "table" not in settings:
        raise TableError(f"{source}: rules: the first row needs the table's name in `table`")
    raw = {
        **{"name": settings["table"]},
        **{k: settings[k] for k in ("hit_policy",) if k in settings},
        **{k: [x.strip() for x in settings[k].split(",")] for k in ("incidents",) if k in settings},
        "personas": personas_from_frame(personas, source) if personas is not None else [],
        "perks": raw_perks,
        "rules": raw_rules,
    }
    return _from_builtins(raw, source)


# --- files ---------------------------------------------------------------------------


def personas_path(path: Path) -> Path:
    """The personas file that goes with a rules CSV, if the table has personas."""
    return path.with_name(path.name.removesuffix(".csv") + ".personas.csv")


def perks_path(path: Path) -> Path:
    """The perks file that goes with a rules CSV: `NAME.perks.csv` beside `NAME.csv`."""
    return path.with_name(path.name.removesuffix(".csv") + ".perks.csv")


def write_csv(table: OfferTable, path: Path) -> list[Path]:
    """Rules and perks as two CSV files; a cell a spreadsheet would run as a formula is
    quoted (segmentation.cells), and `read_csv` reads it back exactly."""
    rules, perks = table_frames(table)
    guard_frame(rules).write_csv(path)
    guard_frame(perks).write_csv(perks_path(path))
    written = [path, perks_path(path)]
    if table.personas:
        guard_frame(persona_frame(table)).write_csv(personas_path(path))
        written.append(personas_path(path))
    return written


def csv_frames(path: Path) -> tuple[Path, pl.DataFrame, pl.DataFrame, pl.DataFrame | None]:
    """(rules file, rules, perks, personas or None) of a CSV table named by any of its files."""
    for suffix in (".perks.csv", ".personas.csv"):
        if path.name.endswith(suffix):
            path = path.with_name(path.name.removesuffix(suffix) + ".csv")
    companion = perks_path(path)
    if not companion.exists():
        raise TableError(f"{path.name}: its perks file {companion.name} is missing")
    rules, perks = (unguard_frame(pl.read_csv(p, infer_schema=False)) for p in (path, companion))
    people = personas_path(path)
    personas = unguard_frame(pl.read_csv(people, infer_schema=False)) if people.exists() else None
    return path, rules, perks, personas


def read_csv(path: Path) -> OfferTable:
    path, rules, perks, personas = csv_frames(path)
    return table_from_frames(rules, perks, path.name, personas)


def _xlsx_value(column: str, text: str | None) -> Any:
    """A number where the spreadsheet can hold it exactly, else the text itself."""
    numeric = column in _INTS | _FLOATS or column.endswith((".min", ".max"))
    if text is None or not numeric:
        return text
    try:
        x = float(text)
    except ValueError:
        return text
    return x if float(f"{x:.16G}") == x and abs(x) < 1e300 else text


def write_xlsx(
    table: OfferTable, path: Path, choices: Mapping[str, Sequence[str]] | None = None
) -> list[Path]:
    """The workbook, with dropdowns (offers.catalog.workbook): perk ids, yes/no, kinds, and
    the values of each condition in `choices` (`{"segment": [...]}`)."""
    import xlsxwriter

    rules, perks = table_frames(table)
    with xlsxwriter.Workbook(str(path)) as book:
        bold = book.add_format({"bold": True})
        text = book.add_format({"num_format": "@"})
        frames = [("rules", rules), ("perks", perks)]
        if table.personas:
            frames.append(("personas", persona_frame(table)))
        sheets = {}
        for name, frame in frames:
            sheet = book.add_worksheet(name)
            sheets[name] = (sheet, frame.columns)
            sheet.freeze_panes(1, 0)
            for j, column in enumerate(frame.columns):
                sheet.write_string(0, j, column, bold)
                sheet.set_column(j, j, max(10, min(40, len(column) + 2)))
                for i, cell in enumerate(frame[column].to_list(), start=1):
                    value = _xlsx_value(column, cell)
                    if isinstance(value, float):
                        sheet.write_number(i, j, value)
                    elif value is not None:
                        sheet.write_string(i, j, value, text)
            sheet.autofilter(0, 0, frame.height, max(0, frame.width - 1))
        add_pick_lists(book, sheets, [p.id for p in table.perks], choices or {})
    add_case_sheet(path, table.cases)  # the example cases, when there are any
    return [path]


def read_xlsx(path: Path) -> OfferTable:
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        rules = sheet_frame(book, "rules", path.name)
        perks = sheet_frame(book, "perks", path.name)
        has_personas = "personas" in book.sheetnames
        personas = sheet_frame(book, "personas", path.name) if has_personas else None
    finally:
        book.close()
    return with_case_sheet(table_from_frames(rules, perks, path.name, personas), path)


def read_table_file(path: Path) -> tuple[OfferTable, str]:
    """A table from TOML, CSV or XLSX, with its TOML body (the TOML file's own text)."""
    suffix = path.suffix.lower()
    if suffix == ".toml":
        text = path.read_text(encoding="utf-8")
        return decode_table(text, path.name), text
    if suffix == ".csv":
        table = read_csv(path)
    elif suffix == ".xlsx":
        table = read_xlsx(path)
    else:
        raise TableError(f"{path.name}: unknown format (use {', '.join(FORMATS)})")
    return table, dump_table(table)


def write_table_file(
    table: OfferTable,
    path: Path,
    body: str | None = None,
    choices: Mapping[str, Sequence[str]] | None = None,
) -> list[Path]:
    """Write `table` as TOML (its `body` text when given), CSV (two files) or XLSX (with
    dropdowns, `choices` giving the values of conditions such as `segment`)."""
    suffix = path.suffix.lower()
    if suffix == ".toml":
        path.write_text(body if body is not None else dump_table(table), encoding="utf-8")
        return [path]
    if suffix == ".csv":
        return write_csv(table, path)
    if suffix == ".xlsx":
        return write_xlsx(table, path, choices)
    raise TableError(f"{path.name}: unknown format (use {', '.join(FORMATS)})")
