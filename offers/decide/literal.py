"""Columns of one value, made without an expression.

Polars plans every eager `with_columns` anew, and on a small incident that planning is most
of the cost; a constant column stacked onto a frame (`DataFrame.hstack`) plans nothing.
"""

from __future__ import annotations

from typing import Any

import polars as pl

__all__ = ["constant"]


def constant(name: str, value: Any, dtype: pl.DataType, height: int) -> pl.Series:
    """`value` on `height` rows."""
    return pl.Series(name, [value], dtype).new_from_index(0, height)
