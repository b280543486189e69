"""A finding of validation: how bad, what kind, and where, down to a spreadsheet's cell."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Literal

import msgspec

__all__ = ["Finding", "Severity", "did_you_mean"]

Severity = Literal["error", "warning"]


class Finding(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One problem: how bad, what kind (`code`), and where (table, rule or perk, field; in
    a spreadsheet also the `sheet`, its `row` (1 is the header), `cell` such as "E5" and
    the `column`'s name)."""

    severity: Severity
    code: str
    table: str
    rule: str | None = None
    perk: str | None = None
    field: str | None = None
    sheet: str | None = None
    row: int | None = None
    cell: str | None = None
    column: str | None = None
    message: str

    def place(self) -> str:
        """Where in the spreadsheet: `rules!E5 (perk)`, `perks row 3`, or ""."""
        if self.sheet is None:
            return ""
        at = f"{self.sheet}!{self.cell}" if self.cell else f"{self.sheet} row {self.row}"
        return f"{at} ({self.column})" if self.column else at

    def __str__(self) -> str:
        where = [f"table {self.table}"]
        if self.rule is not None:
            where.append(f"rule {self.rule}")
        if self.perk is not None:
            where.append(f"perk {self.perk}")
        if self.field is not None:
            where.append(f"field {self.field}")
        if self.sheet is not None:
            where.append(self.place())
        return f"{self.severity}: {', '.join(where)}: {self.message}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """ " (did you mean 'road-warrior'?)" for the closest choice, or "" when none is close."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
