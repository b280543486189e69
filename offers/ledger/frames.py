"""Ledger rows as polars frames: the types a decision is read in, and a reader that takes
rows straight from the driver's cursor, so SQLite and PostgreSQL hand back the same frame.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import sqlalchemy as sa

from offers.record import DECISION_COLUMNS

__all__ = ["DECISION_SCHEMA", "read_frame"]

DECISION_SCHEMA: dict[str, Any] = {
    "incident_id": pl.String,
    "step": pl.Int32,
    "customer_id": pl.String,
    "segment": pl.String,
    "segment_description": pl.String,
    "message_kind": pl.String,
    "channel": pl.String,
    "language": pl.String,
    "text": pl.String,
    "rule_id": pl.String,
    "perk_id": pl.String,
    "perk_title": pl.String,
    "perk_value": pl.Float64,
    "perk_cost": pl.Float64,
    "charged_cost": pl.Float64,
    "replaces": pl.String,
    "currency": pl.String,
    "perk_code": pl.String,
    "valid_until": pl.Date,
    "holdout": pl.Boolean,
    "needs_human": pl.Boolean,
    "propensity": pl.Float64,
    "reasons": pl.String,  # JSON list of sentences
    "entitlements": pl.String,  # JSON list of entitlement objects
    "airport": pl.String,
}
assert tuple(DECISION_SCHEMA) == DECISION_COLUMNS


def read_frame(
    conn: sa.Connection,
    query: sa.Select[Any] | sa.CompoundSelect[Any],
    schema: dict[str, Any],
) -> pl.DataFrame:
    """Rows of a query as columns of `schema`, from the driver's cursor.

    SQLAlchemy still compiles and binds; only its per-row result objects are skipped,
    which is most of the cost of reading a million-customer incident back. SQLite hands
    dates and times over as the text it stores and booleans as integers: they are read
    as such and converted here, column by column.
    """
    rows = _fetch(conn, query)
    if not rows:
        return pl.DataFrame(schema=schema)
    if conn.dialect.name != "sqlite":
        return _columns(rows, schema)
    read = {c: _sqlite_read(t) for c, t in schema.items()}
    frame = _columns(rows, read)
    return frame.with_columns(_from_sqlite(c, t) for c, t in schema.items() if read[c] != t)


def _fetch(conn: sa.Connection, query: sa.Select[Any] | sa.CompoundSelect[Any]) -> list[Any]:
    """Every row of `query` as the driver hands it, the result closed after."""
    result: Any = conn.execute(query)
    try:
        rows: list[Any] = result.cursor.fetchall()
    finally:
        result.close()
    return rows


def _columns(rows: list[Any], schema: dict[str, Any]) -> pl.DataFrame:
    """`rows` turned into one typed series per column of `schema`, in its order."""
    columns = zip(*rows, strict=True)
    typed = zip(schema.items(), columns, strict=True)
    return pl.DataFrame([pl.Series(c, values, dtype=t) for (c, t), values in typed])


def _sqlite_read(dtype: Any) -> Any:
    """The type a column of `dtype` arrives in from SQLite's own driver."""
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        return pl.String
    return pl.Int8 if dtype == pl.Boolean else dtype


def _from_sqlite(name: str, dtype: Any) -> pl.Expr:
    """Column `name` as read from SQLite (see `_sqlite_read`) converted to `dtype`."""
    col = pl.col(name)
    if dtype == pl.Date:
        return col.str.to_date("%Y-%m-%d")
    if isinstance(dtype, pl.Datetime):  # stored as UTC; an offset after it is ignored, as
        # SQLAlchemy's own reader does (its writer and offers.ledger.bulk never write one)
        stamp = col.str.extract(r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?)")
        parsed = stamp.str.replace("T", " ").str.to_datetime(
            "%Y-%m-%d %H:%M:%S%.f", time_unit=dtype.time_unit
        )
        return parsed.dt.replace_time_zone(dtype.time_zone) if dtype.time_zone else parsed
    return col.cast(dtype)
