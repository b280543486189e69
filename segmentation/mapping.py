"""How a foreign table becomes profile columns: renames, value maps, constants, list splits.

Also the lenient casts the importer checks with: each returns null where a value does not fit
the profile dtype, so comparing nulls before and after finds the failing rows.

A mapping is a small TOML file an analyst writes once per export format, e.g. for an airline
satisfaction survey:

```toml
[columns]                       # profile column = column in the file
customer_id = "id"
business_share = "Type of Travel"
tier = "Customer Type"

[values.business_share]         # value in the file = profile value
"Business travel" = 1.0
"Personal Travel" = 0.0

[values.tier]
"Loyal Customer" = "gold"
"disloyal Customer" = "basic"

[constants]                     # columns the file lacks, same value on every row
language = "en"
preferred_channel = "email"
allowed_channels = "email"
consent_marketing = false

[years_since]                   # profile column = date column; years before `as_of`
tenure_years = "Member since"
```

A value map is exhaustive: a non-empty value it does not list is an error on that row, never
passed through. Unknown keys anywhere are refused, so a typo never silently maps nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
import polars as pl

from segmentation.profiles import PROFILE_SCHEMA

__all__ = [
    "MappingError",
    "ProfileMapping",
    "as_text",
    "lenient_cast",
    "load_mapping",
    "parse_mapping",
    "value_text",
    "years_since",
]

Scalar = str | float | bool
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


class MappingError(ValueError):
    """A mapping file that cannot be used; the message says which key and why."""


class ProfileMapping(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Renames, value maps and constants that turn a foreign table into profile columns."""

    columns: dict[str, str] = {}
    """Profile column -> source column."""
    values: dict[str, dict[str, Scalar]] = {}
    """Profile column -> {source value -> profile value}; exhaustive for that column."""
    constants: dict[str, Scalar] = {}
    """Profile column -> the value every row gets (for columns the file lacks)."""
    years_since: dict[str, str] = {}
    """Profile column -> source date column; the value is years from that date to `as_of`."""
    list_separator: str = "|"
    """Separator of list columns held as text, e.g. allowed_channels = "sms|email"."""
    timestamp_format: str | None = None
    """strftime format of date columns; None parses ISO 8601 dates and date-times."""
    as_of: date | None = None
    """Reference date for `years_since`; None means the day of the import."""
    drop: list[str] = []
    """Source columns not to keep in the snapshot (extra columns are kept otherwise)."""

    def __post_init__(self) -> None:
        targets = [*self.columns, *self.values, *self.constants, *self.years_since]
        unknown = sorted({name for name in targets if name not in PROFILE_SCHEMA})
        if unknown:
            raise MappingError(f"mapping names unknown profile columns: {', '.join(unknown)}")
        twice = sorted(set(self.constants) & (set(self.columns) | set(self.years_since)))
        if twice:
            raise MappingError(f"mapping gives both a source and a constant for: {twice}")
        if not self.list_separator:
            raise MappingError("list_separator must not be empty")

    def source_of(self, column: str) -> str:
        """The source column read for a profile column (itself when not renamed)."""
        return self.columns.get(column, column)


def parse_mapping(text: str, origin: str = "mapping") -> ProfileMapping:
    """Decode mapping TOML text; errors name `origin` and the offending key."""
    try:
        return msgspec.toml.decode(text.encode("utf-8"), type=ProfileMapping)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise MappingError(f"{origin}: {exc}") from exc


def load_mapping(path: str | Path) -> ProfileMapping:
    """Read and decode a mapping TOML file."""
    return parse_mapping(Path(path).read_text(encoding="utf-8"), str(path))


# -- value conversion: lenient casts whose nulls mark the values that did not fit -----------


def lenient_cast(
    x: pl.Expr, kind: pl.DataType, dtype: pl.DataType, sep: str
) -> tuple[pl.Expr, pl.Expr]:
    """`x` leniently cast to `dtype` (null where it does not fit) and the reason to give."""
    if kind == dtype:
        return x, pl.lit("")
    if isinstance(dtype, pl.Enum):
        cats = tuple(dtype.categories.to_list())
        return _enum(as_text(x, kind), cats), pl.lit(f"unknown value (expected {', '.join(cats)})")
    if isinstance(dtype, pl.List):
        inner = dtype.inner
        assert isinstance(inner, pl.Enum)
        cats = tuple(inner.categories.to_list())
        items = (
            x.cast(pl.List(pl.String))
            if isinstance(kind, pl.List)
            else as_text(x, kind).str.split(sep)
        )
        value = _enum_list(items, cats).list.unique(maintain_order=True)
        return value, pl.lit(f"unknown value (expected {sep.join(cats)})")
    if dtype == pl.Boolean:
        if kind == pl.Boolean:
            return x, pl.lit("")
        words = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}
        text = as_text(x, kind).str.to_lowercase()
        return text.replace_strict(words, default=None, return_dtype=pl.Boolean), pl.lit(
            "not true or false"
        )
    if dtype.is_float():
        return _number(x, kind), pl.lit("not a number")
    if dtype.is_integer():
        number = _number(x, kind)
        whole = pl.when(number == number.round(0)).then(number.cast(dtype, strict=False))
        return whole, pl.lit("not a whole number")
    return as_text(x, kind), pl.lit("")


def as_text(x: pl.Expr, kind: pl.DataType) -> pl.Expr:
    """Trimmed text, with empty text as null."""
    text = x.str.strip_chars() if kind == pl.String else x.cast(pl.String, strict=False)
    return pl.when(text != "").then(text)


def _number(x: pl.Expr, kind: pl.DataType) -> pl.Expr:
    source = as_text(x, kind) if kind == pl.String else x
    return source.cast(pl.Float64, strict=False)


def _enum(text: pl.Expr, cats: tuple[str, ...]) -> pl.Expr:
    """Case-insensitive match against the categories, in their canonical spelling."""
    if all(c == c.lower() for c in cats):
        return text.str.to_lowercase().cast(pl.Enum(cats), strict=False)
    canonical = {c.lower(): c for c in cats}
    matched = text.str.to_lowercase().replace_strict(
        canonical, default=None, return_dtype=pl.String
    )
    return matched.cast(pl.Enum(cats))


def _enum_list(items: pl.Expr, cats: tuple[str, ...]) -> pl.Expr:
    """`_enum` on every element of a list column; a bad element becomes a null element."""
    if all(c == c.lower() for c in cats):
        lowered = items.list.eval(pl.element().str.strip_chars().str.to_lowercase())
        return lowered.cast(pl.List(pl.Enum(cats)), strict=False)
    return items.list.eval(_enum(pl.element().str.strip_chars(), cats))


def value_text(value: Scalar) -> str:
    """A mapped value as the text the casts read ("true", "1.0", "gold")."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def years_since(x: pl.Expr, kind: pl.DataType, mapping: ProfileMapping) -> pl.Expr:
    """Years from the date in `x` to the mapping's `as_of` (default: today), null if unparseable."""
    as_of = mapping.as_of or datetime.now(UTC).date()
    if kind == pl.Date:
        day = x
    elif isinstance(kind, pl.Datetime):
        day = x.dt.date()
    else:
        text = as_text(x, kind)
        day = text.str.to_datetime(mapping.timestamp_format, strict=False).dt.date()
    return ((pl.lit(as_of, dtype=pl.Date) - day).dt.total_days() / 365.25).round(2)
