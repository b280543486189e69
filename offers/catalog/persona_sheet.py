"""Personas as a spreadsheet: the `personas` sheet (or `NAME.personas.csv`), one row each.

Columns: `id`, `description`, `segments` (segments pinned to the persona, comma-separated),
then one column per trait as in the rules sheet: `traits.COLUMN` holds values (or
`true`/`false`), `traits.COLUMN.min` and `traits.COLUMN.max` an inclusive range. A table
without personas has no such sheet; blank rows are ignored, unknown columns refused.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from offers.catalog.cells import bool_cell, cell, check_header, parse_number
from offers.catalog.fields import Range
from offers.catalog.tables import OfferTable, TableError

__all__ = ["PERSONA_COLUMNS", "persona_frame", "personas_from_frame"]

PERSONA_COLUMNS = ("id", "description", "segments")


def persona_frame(table: OfferTable) -> pl.DataFrame:
    """The table's personas as text cells (no rows when it has none)."""
    trait_columns: list[str] = []
    rows: list[dict[str, str | None]] = []
    for persona in table.personas:
        row = {
            "id": persona.id,
            "description": persona.description or None,
            "segments": cell(persona.segments),
        }
        for column, cond in persona.traits.items():
            if isinstance(cond, Range):
                row[f"traits.{column}.min"] = cell(cond.min)
                row[f"traits.{column}.max"] = cell(cond.max)
            else:
                row[f"traits.{column}"] = cell(cond)
        trait_columns += [c for c in row if c.startswith("traits.") and c not in trait_columns]
        rows.append(row)
    header = [*PERSONA_COLUMNS, *trait_columns]
    return pl.DataFrame(
        {c: [r.get(c) for r in rows] for c in header}, schema=dict.fromkeys(header, pl.String)
    )


def personas_from_frame(frame: pl.DataFrame, source: str) -> list[dict[str, Any]]:
    """Rows of the personas sheet as builtins for the table; errors name the row."""
    check_header(frame.columns, PERSONA_COLUMNS, ("traits.",), "personas", source)
    out = []
    for number, row in enumerate(frame.iter_rows(named=True), start=2):
        if all(v is None for v in row.values()):
            continue
        persona: dict[str, Any] = {}
        traits: dict[str, Any] = {}
        for key, text in row.items():
            if text is None:
                continue
            if key.endswith((".min", ".max")) and key.startswith("traits."):
                bound = traits.setdefault(key[7:-4], {})
                if not isinstance(bound, dict):
                    raise TableError(
                        f"{source}: personas row {number}, field {key[:-4]}: both values and "
                        "a range"
                    )
                bound[key[-3:]] = parse_number(text, float)
            elif key.startswith("traits."):
                value = bool_cell(text)
                traits[key[7:]] = (
                    value if isinstance(value, bool) else [v.strip() for v in text.split(",")]
                )
            elif key == "segments":
                persona[key] = [v.strip() for v in text.split(",")]
            else:
                persona[key] = text
        if traits:
            persona["traits"] = traits
        out.append(persona)
    return out
