"""Situations: the few distinct combinations of columns that a million rows fall into.

Words (reasons, message texts) depend on a handful of low-cardinality columns. Building
them once per situation and joining them back is what keeps the engine a few column passes
instead of string work per customer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import reduce

import polars as pl

__all__ = ["per_situation", "situation_key"]


def situation_key(columns: Sequence[str | pl.Expr]) -> pl.Expr:
    """A 64-bit key, equal for rows that agree on every column.

    Each column is hashed on its own with its own seed and the hashes are xor-ed: a column
    that is the same for everyone costs nothing, where hashing a struct of the columns
    would materialize them all row by row.
    """
    hashes = [
        (pl.col(c) if isinstance(c, str) else c).hash(seed=i)
        for i, c in enumerate(columns, start=1)
    ]
    if not hashes:
        return pl.repeat(pl.lit(0, pl.UInt64), pl.len())
    return reduce(lambda a, b: a ^ b, hashes)


def per_situation(
    frame: pl.DataFrame,
    keys: Sequence[str],
    compute: Callable[[pl.DataFrame], pl.DataFrame],
) -> pl.DataFrame:
    """`frame` with the columns `compute` adds, computed on the distinct `keys` only.

    `compute` gets one row per situation (the key columns) and returns it with new columns;
    those are joined back onto every row of `frame` in order.
    """
    keyed = frame.select(situation_key(keys).alias("_situation"), *keys)
    computed = compute(keyed.unique("_situation"))
    added = [c for c in computed.columns if c not in keyed.columns]
    back = keyed[["_situation"]].join(
        computed[["_situation", *added]], on="_situation", how="left", maintain_order="left"
    )
    # new columns are stacked on as they are, which plans nothing (polars plans each
    # eager operation anew: most of what a small incident costs)
    if set(added) & set(frame.columns):
        return frame.with_columns(back.drop("_situation"))
    return frame.hstack(back.get_columns()[1:])
