"""What a segment's typical customer looks like, in the profile's own units.

Offer tables describe personas by traits over profile columns (`business_share = { min =
0.5 }`), not by segment names, so a table keeps reaching the segments of any segmentation an
analyst promotes. A segment's traits are read off its customers in one group-by: the mean of
a numeric column, the share of `true` in a boolean one, the most common value of a text one.
Names, contact details and protected attributes are never summarized.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from segmentation.book import PERSONAL_COLUMNS, ProfileBook
from segmentation.profiles import OBJECTION_COLUMN, PROTECTED_COLUMNS, UNSEGMENTED

__all__ = ["SegmentTraits", "model_traits", "round_traits", "segment_traits", "trait_columns"]

#: Columns that say who a customer is or how to reach them, never what they are like.
_NOT_TRAITS = frozenset(
    {"customer_id", "first_name", "segment", "timezone", OBJECTION_COLUMN, *PERSONAL_COLUMNS}
)

if TYPE_CHECKING:
    from segmentation.model import Segmentation

SegmentTraits = dict[str, dict[str, Any]]
"""Segment name -> {"size": customers, column: typical value, ...}."""


def _summary(name: str, dtype: pl.DataType) -> pl.Expr | None:
    col = pl.col(name)
    if dtype == pl.Boolean:
        return col.cast(pl.Float64).mean().alias(name)
    if dtype.is_numeric():
        return col.cast(pl.Float64).mean().alias(name)
    if isinstance(dtype, pl.Enum | pl.Categorical) or dtype == pl.String:
        return col.cast(pl.String).drop_nulls().mode().sort().first().alias(name)
    return None  # lists, dates: no single typical value


def trait_columns(schema: pl.Schema, segment: str = "segment") -> dict[str, str]:
    """The columns a segment's traits summarize and how: "mean" (numbers, booleans as the
    share of true) or "mode" (text: the most common value, the lowest of a tie)."""
    out = {}
    for name, dtype in schema.items():
        if name in _NOT_TRAITS or name in PROTECTED_COLUMNS or name == segment:
            continue
        if dtype == pl.Boolean or dtype.is_numeric():
            out[name] = "mean"
        elif isinstance(dtype, pl.Enum | pl.Categorical) or dtype == pl.String:
            out[name] = "mode"
    return out


def round_traits(name: str, row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """One segment's traits as `segment_traits` keeps them (floats to 6 decimals)."""
    return name, {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}


def segment_traits(profiles: pl.DataFrame, segment: str = "segment") -> SegmentTraits:
    """Per segment of `profiles` (which carries a `segment` column): size and typical values.

    Customers who objected to profiling (the unsegmented group) are left out: nothing is
    targeted at them, so nothing is learned from them either.
    """
    summaries = [
        expr
        for name, dtype in profiles.schema.items()
        if name not in _NOT_TRAITS and name not in PROTECTED_COLUMNS and name != segment
        if (expr := _summary(name, dtype)) is not None
    ]
    grouped = (
        profiles.lazy()
        .filter(pl.col(segment).is_not_null() & (pl.col(segment) != UNSEGMENTED))
        .group_by(pl.col(segment).cast(pl.String))
        .agg(pl.len().alias("size"), *summaries)
        .sort(segment)
        .collect()
    )
    out: SegmentTraits = {}
    for row in grouped.iter_rows(named=True):
        name = row.pop(segment)
        out[name] = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}
    return out


def model_traits(model: Segmentation, profiles: pl.DataFrame) -> SegmentTraits:
    """The traits of the segments `model` gives `profiles` (e.g. a version before promotion)."""
    return segment_traits(ProfileBook(profiles, model).frame)
