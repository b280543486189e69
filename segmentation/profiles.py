"""Profile schema: the one shape every customer table has once it enters makegood.

Importers, the synthesizer, feature builders and the decision engine all agree on these
columns and dtypes, so a profile file is checked once at the edge (`conform`) and trusted after.
"""

from __future__ import annotations

import polars as pl

__all__ = [
    "CHANNELS",
    "GENDERS",
    "LANGUAGES",
    "MAX_FIRST_NAME",
    "MAX_ID_LENGTH",
    "OBJECTION_COLUMN",
    "PROFILE_SCHEMA",
    "PROTECTED_COLUMNS",
    "TIERS",
    "UNSEGMENTED",
    "UNSEGMENTED_DESCRIPTION",
    "conform",
    "id_rules",
    "objection",
    "unusable_ids",
]

LANGUAGES: tuple[str, ...] = ("en", "zh-Hans", "zh-Hant")
"""Languages messages are written in; BCP 47 tags, script not region, for Chinese."""

CHANNELS: tuple[str, ...] = ("sms", "email", "app", "chat")
"""Contact channels; this order is also the order of `allowed_channels` lists."""

TIERS: tuple[str, ...] = ("basic", "silver", "gold", "platinum")
"""Loyalty tiers, lowest first, so Enum order compares like the programme does."""

GENDERS: tuple[str, ...] = ("female", "male", "other")
"""Self-declared gender values; protected, kept only to report disparity."""

PROTECTED_COLUMNS: frozenset[str] = frozenset(
    {"gender", "birth_year", "age", "nationality", "religion", "disability", "ethnicity"}
)
"""Columns never used for segmentation or offer rules unless explicitly allowed."""

OBJECTION_COLUMN = "objects_to_profiling"
"""Optional boolean column: the customer objected to profiling (absent or null means no)."""

_YES = ("true", "yes", "y", "1")

MAX_ID_LENGTH = 64
"""Longest customer id, in characters: the HTTP API refuses longer ones in paths and bodies."""

MAX_FIRST_NAME = 50
"""Longest first name, in characters; SMS templates are checked with a name this long."""


def id_rules() -> list[tuple[pl.Expr, str]]:
    """Customer ids no interface could carry, as (failure mask, rule) over `customer_id`.

    Any other text is an id: accents, Chinese, spaces inside. Control characters (NUL, tab,
    newline…) are not: a database, a log line or a CSV cell would each read them otherwise.
    """
    ids = pl.col("customer_id")
    return [
        (ids.str.contains(r"\p{Cc}"), "control characters (NUL, tab, newline…) are not allowed"),
        (ids.str.len_chars() > MAX_ID_LENGTH, f"longer than {MAX_ID_LENGTH} characters"),
    ]


def unusable_ids(profiles: pl.DataFrame) -> str | None:
    """Why some ids of `profiles` cannot be served (rule, count, first row), or None."""
    for mask, rule in id_rules():
        bad = profiles.select(mask.fill_null(False).arg_true()).to_series()
        if len(bad):
            return f"customer_id: {rule} ({len(bad):,} ids, the first at row {bad[0] + 1})"
    return None


def objection(schema: pl.Schema) -> pl.Expr:
    """True where the customer objected to profiling; an absent column or a null means no.

    Imports from CSV or Excel keep extra columns as text, so "true", "yes" and "1" count too.
    """
    if OBJECTION_COLUMN not in schema:
        return pl.repeat(False, pl.len()).alias(OBJECTION_COLUMN)
    column = pl.col(OBJECTION_COLUMN)
    if schema[OBJECTION_COLUMN] == pl.String:
        column = column.str.strip_chars().str.to_lowercase().is_in(_YES)
    return column.cast(pl.Boolean).fill_null(False)


UNSEGMENTED = "unsegmented"
"""Segment of customers who objected to profiling: never clustered, base offer only."""
UNSEGMENTED_DESCRIPTION = "objected to profiling"

PROFILE_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "first_name": pl.String(),
    "email": pl.String(),
    "phone": pl.String(),
    "language": pl.Enum(LANGUAGES),
    "preferred_channel": pl.Enum(CHANNELS),
    "allowed_channels": pl.List(pl.Enum(CHANNELS)),
    "consent_marketing": pl.Boolean(),
    "timezone": pl.String(),  # IANA name, e.g. "Asia/Taipei"
    "home_airport": pl.String(),  # IATA code, e.g. "TPE"
    "tier": pl.Enum(TIERS),
    "trips_12m": pl.Int32(),
    "spend_12m": pl.Float64(),
    "business_share": pl.Float64(),  # share of trips that were business, 0..1
    "avg_fare": pl.Float64(),
    "duty_free_spend_12m": pl.Float64(),
    "lounge_visits_12m": pl.Int32(),
    "tenure_years": pl.Float64(),
    "complaints_12m": pl.Int32(),
    "gender": pl.Enum(GENDERS),  # nullable, protected
    "birth_year": pl.Int32(),  # nullable, protected
}
"""Profile columns in canonical order with their polars dtypes."""


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """Return `df` with the profile columns first, in schema order and dtypes.

    Extra columns are kept after them, in their original order, so callers can carry
    along data the schema does not know (e.g. `latent_kind` in synthetic data).
    Raises ValueError naming every missing profile column; casting is strict, so a value
    outside an Enum's categories raises too instead of silently becoming null.
    """
    missing = [name for name in PROFILE_SCHEMA if name not in df.columns]
    if missing:
        raise ValueError(f"profile columns missing: {', '.join(missing)}")
    extra = [name for name in df.columns if name not in PROFILE_SCHEMA]
    return df.select(
        *(pl.col(name).cast(dtype) for name, dtype in PROFILE_SCHEMA.items()),
        *extra,
    )
