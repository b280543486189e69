"""Write a whole frame into a table in one go, skipping rows whose key is already there.

A million-customer step is one statement batch, not a million ORM round trips: SQLite gets
`INSERT … ON CONFLICT DO NOTHING` through the driver's `executemany` over plain tuples
(a NOT NULL violation still fails loudly), PostgreSQL gets
the frame as CSV through `COPY` into a temporary table and one `INSERT … ON CONFLICT DO
NOTHING` from there. Both run inside the caller's transaction and return how many rows
were new.
"""

from __future__ import annotations

import io
import itertools
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import polars as pl
import sqlalchemy as sa

_NULL = r"\N"


def _as_text(frame: pl.DataFrame, table: sa.Table) -> pl.DataFrame:
    """Dates and times as the text each database stores or parses, in column order."""
    exprs = []
    for column in table.columns:
        if column.name not in frame.columns:
            continue
        dtype = frame.schema[column.name]
        col = pl.col(column.name)
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                col = col.dt.convert_time_zone("UTC")
            col = col.dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
        elif dtype == pl.Date:
            col = col.dt.strftime("%Y-%m-%d")
        elif isinstance(dtype, (pl.Enum, pl.Categorical)):
            col = col.cast(pl.String)
        exprs.append(col)
    return frame.select(exprs)


def bulk_insert(
    conn: sa.Connection, table: sa.Table, frame: pl.DataFrame, *, skip_existing: bool = True
) -> int:
    """Insert the rows of `frame`; return how many were inserted.

    With `skip_existing`, rows whose primary key is already there are skipped. Without it
    the caller promises the keys are new (it holds the lock that makes them so): PostgreSQL
    then copies straight into the table, and a broken promise fails the transaction.
    """
    if frame.is_empty():
        return 0
    rows = _as_text(frame, table)
    names = rows.columns
    if conn.dialect.name == "postgresql":
        if not skip_existing:
            return _postgres_copy(conn, table, rows, names)
        return _postgres(conn, table, rows, names)
    return _sqlite(conn, table, rows, names)


def _csv(rows: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    rows.write_csv(buffer, include_header=False, null_value=_NULL)
    return buffer.getvalue()


def _copy(cursor: Any, sql: str, rows: pl.DataFrame, chunk: int = 50_000) -> None:
    """COPY `rows` as CSV a chunk at a time through a queue that a psycopg thread drains.

    The server parses one chunk while polars (which lets go of the GIL) encodes the next,
    so the encoding costs no wall time on a machine with a second core.
    """
    from psycopg.copy import QueuedLibpqWriter  # only where PostgreSQL is installed

    with cursor.copy(sql, writer=QueuedLibpqWriter(cursor)) as copy:
        for start in range(0, rows.height, chunk):
            copy.write(_csv(rows.slice(start, chunk)))


def _postgres_copy(
    conn: sa.Connection, table: sa.Table, rows: pl.DataFrame, names: list[str]
) -> int:
    raw: Any = conn.connection.dbapi_connection
    sql = f"COPY {table.name} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv, NULL '{_NULL}')"
    with raw.cursor() as cursor:
        _copy(cursor, sql, rows)
    return rows.height


def _sqlite(conn: sa.Connection, table: sa.Table, rows: pl.DataFrame, names: list[str]) -> int:
    raw: Any = conn.connection.dbapi_connection  # the driver's own connection, same transaction
    before = raw.total_changes
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"VALUES ({', '.join('?' for _ in names)}) ON CONFLICT DO NOTHING"
    )
    cursor = raw.cursor()
    try:
        cursor.executemany(sql, _tuples(rows))
    finally:
        cursor.close()
    return int(raw.total_changes - before)


def _tuples(rows: pl.DataFrame, chunk: int = 100_000) -> Iterator[tuple[Any, ...]]:
    """The rows as tuples, built column by column a chunk at a time (so a million rows are
    never all Python objects at once); a column with one value throughout (the incident,
    the step, the time) lends every row the same object instead of a new one each."""
    n = rows.height
    same: dict[str, Any] = {}
    for column in rows.iter_columns():
        first = column[0]
        if column.null_count() == n or (
            column.null_count() == 0 and column[-1] == first and bool((column == first).all())
        ):
            same[column.name] = first
    for start in range(0, n, chunk):
        part = rows.slice(start, chunk)
        columns: list[Iterable[Any]] = [
            itertools.repeat(same[c.name], part.height) if c.name in same else c.to_list()
            for c in part.iter_columns()
        ]
        yield from zip(*columns, strict=True)


def _postgres(conn: sa.Connection, table: sa.Table, rows: pl.DataFrame, names: list[str]) -> int:
    staging = f"staging_{uuid.uuid4().hex[:12]}"
    columns = ", ".join(names)
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE {staging} (LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        copy_sql = f"COPY {staging} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '{_NULL}')"
        _copy(cursor, copy_sql, rows)
        cursor.execute(
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {staging} "
            "ON CONFLICT DO NOTHING"
        )
        inserted = cursor.rowcount
        cursor.execute(f"DROP TABLE {staging}")
    return int(inserted)
