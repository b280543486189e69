"""The XLSX side of a table's spreadsheet: cells as text, and dropdowns that help.

An exported workbook carries data validation: the `perk` column of the rules offers the
table's perk ids, yes/no columns offer `true`/`false`, a perk's `kind` the known kinds, and
condition columns with a known set of values (segments of the active segmentation, and
whatever else is in `PICK_LISTS`) offer those values, while still taking several
comma-separated ones. The choices live on a hidden `lists` sheet, which reading ignores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, get_args

import polars as pl

from offers.catalog.cells import num
from offers.catalog.tables import PerkKind, TableError

__all__ = ["LISTS_SHEET", "PICK_LISTS", "add_pick_lists", "sheet_frame", "xlsx_text"]

#: Condition columns (`when.NAME`) offered as a dropdown when the export is given their
#: values; adding one is one entry here.
PICK_LISTS: tuple[str, ...] = ("segment", "persona")
LISTS_SHEET = "lists"
#: Rows below the header that get the dropdowns: the table's and room for new ones.
ROOM = 1000
_YES_NO = ["true", "false"]
_FIXED: dict[str, dict[str, Sequence[str]]] = {
    "rules": {"fallback": _YES_NO},
    "perks": {"usable_now": _YES_NO, "kind": get_args(PerkKind)},
}


def xlsx_text(v: Any) -> str | None:
    """A cell as the text the tabular reader expects (None for an empty cell)."""
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return num(v)
    return str(v)


def sheet_frame(book: Any, name: str, source: str) -> pl.DataFrame:
    """One sheet of an openpyxl workbook as a frame of text cells, headers from row 1."""
    if name not in book.sheetnames:
        raise TableError(f"{source}: no {name!r} sheet")
    rows = list(book[name].iter_rows(values_only=True))
    if not rows:
        return pl.DataFrame()
    header = [str(h) for h in rows[0] if h is not None]
    columns = {
        h: [xlsx_text(r[j]) if j < len(r) else None for r in rows[1:]] for j, h in enumerate(header)
    }
    return pl.DataFrame(columns, schema=dict.fromkeys(header, pl.String))


def add_pick_lists(
    book: Any,
    sheets: Mapping[str, tuple[Any, list[str]]],
    perk_ids: Sequence[str],
    choices: Mapping[str, Sequence[str]],
) -> None:
    """Dropdowns on an xlsxwriter `book` whose `sheets` map a name to (worksheet, header)."""
    lists: dict[str, Sequence[str]] = {"perk": sorted(perk_ids)}
    lists |= {f"when.{name}": sorted(choices[name]) for name in PICK_LISTS if choices.get(name)}
    holder = book.add_worksheet(LISTS_SHEET)
    holder.hide()
    ranges = {}
    for j, (column, values) in enumerate(lists.items()):
        holder.write_string(0, j, column)
        for i, value in enumerate(values, start=1):
            holder.write_string(i, j, value)
        letter = chr(65 + j) if j < 26 else "A" + chr(65 + j - 26)
        ranges[column] = f"={LISTS_SHEET}!${letter}$2:${letter}${max(2, len(values) + 1)}"
    for name, (sheet, header) in sheets.items():
        for j, column in enumerate(header):
            rule: dict[str, Any] | None = None
            if name == "rules" and column in ranges:
                several = column.startswith("when.")
                rule = {
                    "validate": "list",
                    "source": ranges[column],
                    "error_type": "information" if several else "stop",
                    "input_title": column,
                    "input_message": "pick one, or type several separated by commas"
                    if several
                    else "pick a perk of the perks sheet",
                    "error_message": f"not one of the {column} values",
                }
            elif column in _FIXED.get(name, {}):
                rule = {
                    "validate": "list",
                    "source": list(_FIXED[name][column]),
                    "error_message": f"{column}: one of {', '.join(_FIXED[name][column])}",
                }
            if rule is not None:
                sheet.data_validation(1, j, ROOM, j, rule)
