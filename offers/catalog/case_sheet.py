"""Example cases as the `cases` sheet of an offer table's XLSX: one row per case.

Columns: `id`, `description`, `segment`, `persona`, `kind` (empty: flight_delay), `expect.rule`,
`expect.perk` (`none`: no perk), then `facts.NAME` per incident fact (`facts.delay_minutes`,
`facts.origin`…) and `profile.NAME` per profile column the case sets (`profile.tier`,
`profile.language`…); an empty cell leaves it out. A workbook without the sheet has no cases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from offers.catalog.cases import Case
from offers.catalog.tables import OfferTable, TableError

__all__ = [
    "CASE_SHEET",
    "add_case_sheet",
    "case_rows",
    "cases_from_rows",
    "read_case_sheet",
    "with_case_sheet",
]

CASE_SHEET = "cases"
_FIXED = ("id", "description", "segment", "persona", "kind", "expect.rule", "expect.perk")
_PREFIXES = ("facts.", "profile.")


def case_rows(cases: list[Case]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows: strings, numbers and booleans as the sheet holds them."""
    extra = sorted(
        {f"facts.{k}" for c in cases for k in c.facts}
        | {f"profile.{k}" for c in cases for k in c.profile}
    )
    header = [*_FIXED, *extra]
    rows = []
    for c in cases:
        values: dict[str, Any] = {
            "id": c.id,
            "description": c.description or None,
            "segment": c.segment,
            "persona": c.persona,
            "kind": None if c.kind == "flight_delay" else c.kind,
            "expect.rule": c.expect.rule,
            "expect.perk": c.expect.perk,
        }
        values |= {f"facts.{k}": _cell(v) for k, v in c.facts.items()}
        values |= {f"profile.{k}": _cell(v) for k, v in c.profile.items()}
        rows.append([values.get(h) for h in header])
    return header, rows


def _cell(v: Any) -> Any:
    """A list (allowed channels, say) as JSON text; everything else as it is."""
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def _value(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and v.startswith("["):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def cases_from_rows(header: list[str], rows: list[list[Any]], source: str) -> list[Case]:
    """The cases of a sheet; an unknown column or a bad row is a TableError naming it."""
    for column in header:
        if column not in _FIXED and not column.startswith(_PREFIXES):
            raise TableError(f"{source}: {CASE_SHEET}: unknown column {column!r}")
    cases = []
    for number, row in enumerate(rows, start=2):
        cells = {h: v for h, v in zip(header, row, strict=False) if v not in (None, "")}
        if not cells:
            continue
        raw: dict[str, Any] = {
            "facts": {k[6:]: _value(v) for k, v in cells.items() if k.startswith("facts.")},
            "profile": {k[8:]: _value(v) for k, v in cells.items() if k.startswith("profile.")},
            "expect": {k[7:]: v for k, v in cells.items() if k.startswith("expect.")},
        }
        named = ("id", "description", "segment", "persona", "kind")
        raw |= {k: v for k, v in cells.items() if k in named}
        try:
            cases.append(msgspec.convert(raw, Case, strict=False))
        except msgspec.ValidationError as exc:
            where = cells.get("id") or f"on row {number}"
            raise TableError(f"{source}: {CASE_SHEET}: case {where}: {exc}") from exc
    return cases


def add_case_sheet(path: Path, cases: list[Case]) -> None:
    """Add the `cases` sheet to the workbook at `path` (nothing when there are none)."""
    if not cases:
        return
    import openpyxl

    book = openpyxl.load_workbook(path)
    sheet = book.create_sheet(CASE_SHEET)
    header, rows = case_rows(cases)
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    sheet.freeze_panes = "A2"
    book.save(path)


def read_case_sheet(path: Path) -> list[Case]:
    """The cases of the workbook at `path`; none without a `cases` sheet."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        if CASE_SHEET not in book.sheetnames:
            return []
        rows = [list(r) for r in book[CASE_SHEET].iter_rows(values_only=True)]
    finally:
        book.close()
    if not rows:
        return []
    header = [str(h) for h in rows[0] if h is not None]
    return cases_from_rows(header, rows[1:], path.name)


def with_case_sheet(table: OfferTable, path: Path) -> OfferTable:
    """`table` read from the workbook at `path`, with the cases of its `cases` sheet."""
    return msgspec.structs.replace(table, cases=read_case_sheet(path))
