"""Import customer profiles from CSV, Parquet, NDJSON or Excel, checked against the schema.

Every check is a polars expression over whole columns: a cast is done leniently
(`strict=False`) and the rows where a value went in but a null came out are the failures.
Each failure is reported with its row (1 is the first data row after the header), column,
offending value and reason.

Required columns: customer_id, language, preferred_channel, allowed_channels,
consent_marketing and tier (who the customer is and how they may be contacted; a mapping can
supply constants). Every other profile column is optional and null when the file lacks it.
Extra columns are kept after the profile columns unless the mapping drops them.

The import is all-or-nothing: any error and nothing loads. With a quarantine path the good
rows load and every bad row is written there with its reasons (once the good rows are
loaded), so loaded + rejected is always the number of rows read. Problems with the file as
a whole (unreadable, a required column missing, a mapped column absent) always stop the
import.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import msgspec
import polars as pl

from segmentation.mapping import (
    ProfileMapping,
    as_text,
    lenient_cast,
    load_mapping,
    value_text,
    years_since,
)
from segmentation.profiles import MAX_FIRST_NAME, PROFILE_SCHEMA, conform, id_rules
from segmentation.reading import read_table

__all__ = [
    "REQUIRED_COLUMNS",
    "ImportResult",
    "RowError",
    "import_profiles",
]

REQUIRED_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "language",
    "preferred_channel",
    "allowed_channels",
    "consent_marketing",
    "tier",
)
"""Columns every imported profile must have a value in."""

_ROW = "_row"
_REASONS = "_reasons"
_NON_NEGATIVE = (
    "trips_12m",
    "spend_12m",
    "avg_fare",
    "duty_free_spend_12m",
    "lounge_visits_12m",
    "tenure_years",
    "complaints_12m",
)


class RowError(msgspec.Struct, frozen=True, kw_only=True):
    """One problem: `row` is the 1-based data row, None for the file as a whole."""

    row: int | None
    column: str
    value: str | None
    reason: str


@dataclass(frozen=True)
class ImportResult:
    rows: int
    """Data rows read from the file."""
    profiles: pl.DataFrame
    """The rows that load, conformed to PROFILE_SCHEMA; empty when the import failed."""
    rejected: pl.DataFrame
    """Bad rows as read, with `_row` and `_reasons` first."""
    errors: tuple[RowError, ...]
    """The first `max_errors` problems, by row then column."""
    error_count: int
    """All problems found, not only those listed."""
    quarantine: Path | None = None
    """Where rejected rows go (`write_quarantine`), when the import keeps the good rows."""
    supplied: tuple[str, ...] | None = None
    """Columns the file (or the mapping's constants) gave values for; None: all of them.

    An upsert updates only these for customers already known (see segmentation.snapshots).
    """

    @property
    def ok(self) -> bool:
        """True when `profiles` should be loaded."""
        return self.profiles.height > 0

    def write_quarantine(self) -> None:
        """Write the rejected rows to `quarantine`; call it once the good rows are loaded.

        Not done by the import itself, so a load refused later leaves nothing behind.
        """
        if self.quarantine is not None:
            _write_atomic(self.rejected, self.quarantine)


def import_profiles(
    path: str | Path | bytes,
    mapping: ProfileMapping | str | Path | None = None,
    quarantine: str | Path | None = None,
    max_errors: int = 50,
    *,
    fmt: str | None = None,
) -> ImportResult:
    """Read, map and check profiles; nothing is written.

    With `quarantine` the good rows load and `result.write_quarantine()` keeps the bad ones
    there; without it any error fails the whole import.
    """
    if not isinstance(mapping, ProfileMapping):
        mapping = ProfileMapping() if mapping is None else load_mapping(mapping)
    try:
        table = read_table(path, fmt)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, pl.exceptions.PolarsError) as exc:
        # a broken .xlsx is a broken zip archive underneath (or one missing its parts)
        reason = f"unreadable: {exc or type(exc).__name__}"
        return _failed(0, [RowError(row=None, column="", value=None, reason=reason)])
    table = table.with_row_index(_ROW, offset=1).with_columns(pl.col(_ROW).cast(pl.Int64))
    fatal = _file_errors(table, mapping)
    if fatal:
        return _failed(table.height, fatal)
    if table.height == 0:
        reason = "no data rows"
        return _failed(0, [RowError(row=None, column="", value=None, reason=reason)])

    raw = table.select(_ROW, *_raw_columns(table, mapping))
    checked, checks = _coerce(raw, mapping)
    errors = _errors(checked, checks)
    bad = errors.group_by(_ROW).agg(pl.format("{}: {}", "column", "reason").alias(_REASONS))
    rejected = (
        table.join(bad, on=_ROW, how="inner")
        .select(_ROW, _REASONS, pl.exclude(_ROW, _REASONS))
        .sort(_ROW)
    )
    shown = errors.head(max_errors).rename({_ROW: "row"}).to_dicts()
    listed = tuple(msgspec.convert(shown, list[RowError]))
    if errors.height and (quarantine is None or rejected.height == table.height):
        return _failed(table.height, listed, errors.height, rejected)

    extras = _extra_columns(table, mapping)
    good = checked.join(bad, on=_ROW, how="anti").select(*PROFILE_SCHEMA, _ROW)
    good = good.join(
        table.select(_ROW, *(_numeric_if_all_numbers(table[c]) for c in extras)),
        on=_ROW,
        how="left",
    ).drop(_ROW)
    supplied = [
        c for c in PROFILE_SCHEMA if c in mapping.constants or _source(c, mapping) in table.columns
    ]
    return ImportResult(
        rows=table.height,
        profiles=conform(good),
        rejected=rejected,
        errors=listed,
        error_count=errors.height,
        quarantine=None if quarantine is None else Path(quarantine),
        supplied=(*supplied, *extras),
    )


def _source(column: str, mapping: ProfileMapping) -> str:
    """The file's column a profile column is read from."""
    return mapping.years_since.get(column, mapping.source_of(column))


def _failed(
    rows: int,
    errors: list[RowError] | tuple[RowError, ...],
    count: int | None = None,
    rejected: pl.DataFrame | None = None,
) -> ImportResult:
    return ImportResult(
        rows=rows,
        profiles=pl.DataFrame(schema=PROFILE_SCHEMA),
        rejected=pl.DataFrame() if rejected is None else rejected,
        errors=tuple(errors),
        error_count=len(errors) if count is None else count,
    )


def _file_errors(table: pl.DataFrame, mapping: ProfileMapping) -> list[RowError]:
    """Columns the mapping names but the file lacks, and required columns nowhere to be found."""
    errors = []
    for column in PROFILE_SCHEMA:
        source = mapping.years_since.get(column, mapping.source_of(column))
        if column in mapping.constants or source in table.columns:
            continue
        if column in mapping.columns or column in mapping.years_since:
            reason = f"mapped from column {source!r}, which the file does not have"
        elif column in REQUIRED_COLUMNS:
            reason = "required column missing (map it or give a constant)"
        else:
            continue
        errors.append(RowError(row=None, column=column, value=None, reason=reason))
    return errors


def _raw_columns(table: pl.DataFrame, mapping: ProfileMapping) -> list[pl.Expr]:
    """Each profile column's source values, untouched, as `_raw:<column>`."""
    exprs = []
    for column in PROFILE_SCHEMA:
        source = mapping.years_since.get(column, mapping.source_of(column))
        if column in mapping.constants:
            expr = pl.repeat(mapping.constants[column], pl.len())
        elif source in table.columns:
            expr = pl.col(source)
        else:
            expr = pl.lit(None, dtype=pl.String)
        exprs.append(expr.alias(f"_raw:{column}"))
    return exprs


def _numeric_if_all_numbers(column: pl.Series) -> pl.Series:
    """An extra text column (CSV and Excel are read as text) as numbers when every value is one.

    Profile columns are typed by the schema; extra ones (RFM figures from `profiles derive`,
    a partner's scores) should stay usable as model features after a round trip through CSV.
    """
    if column.dtype != pl.String:
        return column
    as_number = column.str.strip_chars().cast(pl.Float64, strict=False)
    if as_number.null_count() == column.null_count():
        return as_number
    return column


def _extra_columns(table: pl.DataFrame, mapping: ProfileMapping) -> list[str]:
    used = {mapping.source_of(c) for c in PROFILE_SCHEMA} | set(mapping.years_since.values())
    return [
        c
        for c in table.columns
        if c != _ROW and c not in used and c not in PROFILE_SCHEMA and c not in mapping.drop
    ]


_Check = tuple[pl.Expr, str, pl.Expr]  # failure mask, column, reason


def _coerce(raw: pl.DataFrame, mapping: ProfileMapping) -> tuple[pl.DataFrame, list[_Check]]:
    """Profile columns in their schema dtypes, plus the checks that find the failing rows.

    Two passes: value maps into `_in:<column>`, then casts into `<column>`; the checks
    compare the materialized columns, so no cast is computed twice.
    """
    checks: list[_Check] = []
    mapped = []
    for column, table in mapping.values.items():
        x = pl.col(f"_raw:{column}")
        text = as_text(x, raw.schema[f"_raw:{column}"])
        into = [value_text(v) for v in table.values()]
        mapped.append(text.replace_strict(list(table), into, default=None).alias(f"_in:{column}"))
        failed = x.is_not_null() & pl.col(f"_in:{column}").is_null()
        checks.append((failed, column, pl.lit("value not in the mapping")))
    staged = raw.with_columns(mapped)
    values = []
    for column, dtype in PROFILE_SCHEMA.items():
        source = f"_in:{column}" if column in mapping.values else f"_raw:{column}"
        x, kind = pl.col(source), staged.schema[source]
        if column in mapping.years_since:
            value, reason = years_since(x, kind, mapping), pl.lit("unparseable timestamp")
        else:
            value, reason = lenient_cast(x, kind, dtype, mapping.list_separator)
        values.append(value.alias(column))
        failed = x.is_not_null() & pl.col(column).is_null()
        if isinstance(dtype, pl.List):
            bad_items = pl.col(column).list.eval(pl.element().null_count()).list.first()
            failed = failed | (bad_items > 0)
        checks.append((failed, column, reason))
    checks += _rules(raw)
    return staged.with_columns(values), checks


def _rules(raw: pl.DataFrame) -> list[_Check]:
    """Range, presence and uniqueness rules over the cast values."""
    this_year = date.today().year
    checks: list[_Check] = [
        (pl.col(c) < 0, c, pl.lit("negative, must be 0 or more")) for c in _NON_NEGATIVE
    ]
    checks.append(
        (
            ~pl.col("business_share").is_between(0, 1),
            "business_share",
            pl.lit("must be between 0 and 1"),
        )
    )
    checks.append(
        (
            ~pl.col("birth_year").is_between(1900, this_year),
            "birth_year",
            pl.lit(f"must be between 1900 and {this_year}"),
        )
    )
    checks += [(_missing(raw, c), c, pl.lit("missing value")) for c in REQUIRED_COLUMNS]
    checks += [(mask, "customer_id", pl.lit(rule)) for mask, rule in id_rules()]
    checks.append(
        (
            pl.col("first_name").str.len_chars() > MAX_FIRST_NAME,
            "first_name",
            pl.lit(f"longer than {MAX_FIRST_NAME} characters (SMS budgets allow names this long)"),
        )
    )
    rows = pl.col(_ROW).head(5).cast(pl.String).str.join(", ").over("customer_id")
    checks.append(
        (
            pl.col("customer_id").is_not_null() & (pl.len().over("customer_id") > 1),
            "customer_id",
            pl.format("duplicate customer_id (rows {})", rows),
        )
    )
    return checks


def _missing(raw: pl.DataFrame, column: str) -> pl.Expr:
    x = pl.col(f"_raw:{column}")
    if raw.schema[f"_raw:{column}"] == pl.String:
        return x.is_null() | (x.str.strip_chars() == "")
    return x.is_null()


def _errors(checked: pl.DataFrame, checks: list[_Check]) -> pl.DataFrame:
    """One row per failed check: row, column, offending source value, reason."""
    frame = checked.lazy()
    parts = [
        frame.filter(mask.fill_null(False)).select(
            pl.col(_ROW),
            pl.lit(column).alias("column"),
            _shown(checked, column).alias("value"),
            reason.cast(pl.String).alias("reason"),
        )
        for mask, column, reason in checks
    ]
    return pl.concat(parts).sort(_ROW, "column").collect()


def _shown(checked: pl.DataFrame, column: str) -> pl.Expr:
    """The source value as the user wrote it."""
    x = pl.col(f"_raw:{column}")
    if isinstance(checked.schema[f"_raw:{column}"], pl.List):
        return x.cast(pl.List(pl.String)).list.join("|")
    return x.cast(pl.String, strict=False)


def _write_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write Parquet next to `path` and move it into place, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.write_parquet(tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
