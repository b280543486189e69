"""Spreadsheet cells of an offer table: numbers, booleans and lists as text and back.

One cell holds one field: numbers as exactly as text can hold them, `true`/`false`, lists
comma-separated. Shared by the rules, perks and personas sheets (offers.catalog.tabular,
offers.catalog.persona_sheet).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from offers.catalog.tables import TableError

__all__ = ["bool_cell", "cell", "check_header", "num", "parse_number"]


def num(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)


def cell(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return num(v)
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) or None
    return str(v)


def bool_cell(text: str) -> bool | str:
    low = text.strip().lower()
    return {"true": True, "false": False}.get(low, text)


def parse_number(text: str, kind: type) -> Any:
    try:
        return int(text) if kind is int else float(text)
    except ValueError:
        try:
            whole = float(text)
        except ValueError:
            return text  # left as text: msgspec names the rule and field
        return int(whole) if kind is int and whole.is_integer() else text


def check_header(
    columns: Iterable[str],
    fixed: tuple[str, ...],
    prefixes: tuple[str, ...],
    sheet: str,
    source: str,
) -> None:
    """Refuse a column the sheet does not have: nothing typed is silently lost."""
    for c in columns:
        if c not in fixed and not c.startswith(prefixes):
            raise TableError(f"{source}: {sheet}: unknown column {c!r}")
