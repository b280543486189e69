"""The offer-table editor's grid: rows of text cells, in the spreadsheet layout.

A table becomes cells through `offers.catalog.tabular.table_frames` and comes back through
`check_frames`, exactly as an exported spreadsheet does, so the page adds no rules of
its own. What this module adds is placement: a parse error or a validation finding that
names a rule (or perk) and a field is put on that cell, so the page can show it there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from api.numbers import whole_number
from offers.catalog import (
    Checks,
    Finding,
    OfferTable,
    check_frames,
    table_frames,
)

__all__ = [
    "Grid",
    "Kind",
    "Row",
    "check_grids",
    "column_header",
    "grid_from_form",
    "grid_from_table",
]

Kind = Literal["rule", "perk"]
_SETTINGS = ("table", "hit_policy", "incidents")
_LOCATED = re.compile(
    r"(?:^|: )(?:(?P<kind>rule|perk) (?P<id>.+?)|(?P<section>rules|perks)\[(?P<index>\d+)\])"
    r"(?:, field (?P<field>[^:]+))?: (?P<message>.+)$",
    re.DOTALL,
)
_ON_ROW = re.compile(r"^on row (\d+)$")


@dataclass
class Row:
    """One rule or perk as the form shows it; `errors` hold what names no single cell."""

    values: dict[str, str]
    cell_errors: dict[str, list[str]] = field(default_factory=dict)
    cell_warnings: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.values.get("id") or "new row"

    @property
    def blank(self) -> bool:
        return not any(self.values.values())


@dataclass
class Grid:
    """Rules or perks: column names, rows, and problems about the whole table."""

    kind: Kind
    columns: list[str]
    rows: list[Row]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or any(r.errors or r.cell_errors for r in self.rows)

    def frame(self) -> pl.DataFrame:
        kept = [r.values for r in self.rows if not r.blank]
        return pl.DataFrame(
            {c: [v.get(c) or None for v in kept] for c in self.columns},
            schema=dict.fromkeys(self.columns, pl.String),
        )

    def _kept(self) -> list[Row]:
        return [r for r in self.rows if not r.blank]

    def _row(self, ident: str | None, index: int | None) -> Row | None:
        kept = self._kept()
        if index is not None:
            return kept[index] if 0 <= index < len(kept) else None
        found = _ON_ROW.match(ident or "")
        if found is not None:  # tabular counts spreadsheet rows: the header is row 1
            return self._row(None, int(found[1]) - 2)
        return next((r for r in kept if r.values.get("id") == ident), None)

    def _column(self, name: str | None) -> str:
        """The cell a field names: itself, a range's first bound, or the row's id."""
        if name is None or name == "when":
            return "id"
        if name in self.columns:
            return name
        return next((c for c in self.columns if c.startswith(f"{name}.")), "id")

    def place(self, message: str, warning: bool = False, *, ident: str | None = None) -> None:
        """Attach a message to the cell it names, else to the row, else to the table."""
        found = _LOCATED.search(message)
        if ident is None and found is None:
            (self.warnings if warning else self.errors).append(message)
            return
        index = None
        if found is not None:
            kind = found["kind"] or (found["section"] or "")[:-1]
            if kind != self.kind:
                (self.warnings if warning else self.errors).append(message)
                return
            ident = found["id"]
            index = int(found["index"]) if found["index"] else None
        row = self._row(ident, index)
        if row is None:
            (self.warnings if warning else self.errors).append(message)
            return
        text = found["message"] if found is not None else message
        column = self._column(found["field"] if found is not None else None)
        cells = row.cell_warnings if warning else row.cell_errors
        cells.setdefault(column, []).append(text)

    def place_findings(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            mine = f.rule if self.kind == "rule" else f.perk
            if mine is None:
                (self.warnings if f.severity == "warning" else self.errors).append(str(f))
                continue
            row = self._row(mine, None)
            if row is None:
                continue
            cells = row.cell_warnings if f.severity == "warning" else row.cell_errors
            cells.setdefault(self._column(f.field), []).append(f.message)


def _editable(columns: Iterable[str]) -> list[str]:
    return [c for c in columns if c not in _SETTINGS]


_PERK_ORDER = ("id", "kind", "value", "cost", "currency", "usable_now", "validity_days")


def _reading_order(columns: list[str]) -> list[str]:
    """Who and when first, then what they get, then the fine print: how people read a rule.
    A perk shows what it is worth and costs before its titles, so the money is in view."""

    def rank(c: str) -> int:
        if c == "id":
            return 0
        if c.startswith("when."):
            return 1
        return 2 if c in ("perk", "alternatives", "description") else 3

    def perk_rank(c: str) -> int:
        if c in _PERK_ORDER:
            return _PERK_ORDER.index(c)
        return len(_PERK_ORDER) + (0 if c.startswith("title.") else 1)

    is_perk = "kind" in columns or any(c.startswith("title.") for c in columns)
    return sorted(columns, key=perk_rank if is_perk else rank)


def grid_from_table(table: OfferTable, kind: Kind, extra_rows: int = 1) -> Grid:
    """The table's rules (or perks) as cells, with blank rows to add new ones."""
    rules, perks = table_frames(table)
    frame = rules if kind == "rule" else perks
    columns = _reading_order(_editable(frame.columns))
    rows = [
        Row(values={c: _cell(c, row.get(c)) for c in columns})
        for row in frame.iter_rows(named=True)
        if any(row.get(c) for c in columns)
    ]
    rows += [Row(values=dict.fromkeys(columns, "")) for _ in range(extra_rows)]
    return Grid(kind=kind, columns=columns, rows=rows)


def _cell(column: str, text: str | None) -> str:
    """A cell's text; "no" on a yes/no column is the default, so it is left empty."""
    value = (text or "").strip()
    return "" if column in ("fallback", "usable_now") and value == "false" else value


def _position(text: str, was: int) -> tuple[float, int]:
    """Sort key for a row's typed position: a row moved up goes before the one it names,
    a row moved down after it, so "3" means "make this the third"."""
    try:
        wanted = float(text)
    except ValueError:
        return float(was), 0
    return wanted, (wanted > was) - (wanted < was)


def _column_name(text: str) -> str | None:
    name = text.strip()
    if not name:
        return None
    return name if name.startswith("when.") else f"when.{name}"


def grid_from_form(form: Mapping[str, str], kind: Kind) -> Grid:
    """The grid as submitted; rows ticked for removal are left out, a new column added."""
    columns = [c for c in form.get(f"{kind}_columns", "").split(",") if c]
    added = _column_name(form.get("new_column", "")) if kind == "rule" else None
    if added is not None and added not in columns:
        columns.append(added)
    count = whole_number(form.get(f"{kind}_rows", "")) or 0
    placed = []
    for i in range(min(count, 1000)):
        if form.get(f"{kind}-{i}-delete"):
            continue
        row = Row(values={c: _cell(c, form.get(f"{kind}-{i}-{c}")) for c in columns})
        placed.append((_position(form.get(f"{kind}-{i}-position", ""), i + 1), i, row))
    rows = [row for _key, _i, row in sorted(placed, key=lambda p: (*p[0], p[1]))]
    if not rows or not rows[-1].blank:
        rows.append(Row(values=dict.fromkeys(columns, "")))
    return Grid(kind=kind, columns=_editable(columns), rows=rows)


def _rule_frame(name: str, hit_policy: str, rules: Grid) -> pl.DataFrame:
    frame = rules.frame().with_columns(
        table=pl.lit(name, pl.String), hit_policy=pl.lit(hit_policy, pl.String)
    )
    if frame.is_empty():
        return pl.DataFrame({"table": [name], "hit_policy": [hit_policy]})
    return frame


def check_grids(
    base: OfferTable, hit_policy: str, rules: Grid, perks: Grid, checks: Checks
) -> tuple[OfferTable | None, list[Finding]]:
    """Every finding at once, each cell read on its own (offers.catalog.check_frames), the
    table keeping `base`'s incident kinds and personas, which the grids do not show; the
    table is None when some cell could not be read."""
    name = base.name
    frame = _rule_frame(name, hit_policy, rules)
    return check_frames(
        frame, perks.frame(), f"offer table {name}", checks, ("rules", "perks"), None, base
    )


_HEADERS = {
    "id": "id",
    "perk": "perk",
    "alternatives": "alternatives (the engine learns which to give)",
    "per_customer_limit": "limit per customer",
    "validity_days": "valid days",
    "usable_now": "usable at airport",
    "stock": "stock per day (AIRPORT:N, …)",
}


def column_header(column: str) -> str:
    """A column as a person reads it: `when.step.min` is "step from"."""
    if column in _HEADERS:
        return _HEADERS[column]
    if column.startswith("when."):
        rest = column[5:]
        for end, word in ((".min", "from"), (".max", "to")):
            if rest.endswith(end):
                return f"{rest[: -len(end)]} {word}"
        return f"{rest} is"
    if column.startswith("title."):
        return f"title ({column[6:]})"
    return column.replace("_", " ")
