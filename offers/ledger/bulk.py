"""Write a whole frame into a table in one go, skipping rows whose key is already there.

A million-customer step is one statement batch, not a million ORM round trips: SQLite gets
`INSERT … ON CONFLICT DO NOTHING` through the driver's `executemany` over plain tuples
(a NOT NULL violation still fails loudly), PostgreSQL gets
the frame in the binary COPY format (`offers.ledger.pgbinary`) through `COPY` into a temporary
table and one `INSERT … ON CONFLICT DO NOTHING` from there. Both run inside the caller's
transaction and return how many rows were new. A few hundred rows (a small incident, an
update adding customers) go to PostgreSQL as one JSON parameter of one INSERT instead: a
temporary table and the encoder's per-column set-up cost more than the rows.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import polars as pl
import sqlalchemy as sa

import offers.ledger.pgbinary as pgbinary


def _as_text(frame: pl.DataFrame, table: sa.Table) -> pl.DataFrame:
    """Dates and times as the text SQLite stores, in column order."""
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
    if conn.dialect.name == "postgresql":
        rows = frame.select(c.name for c in table.columns if c.name in frame.columns)
        if rows.height <= SMALL:
            return _postgres_json(conn, table, rows, skip_existing)
        if not skip_existing:
            return _postgres_copy(conn, table, rows)
        return _postgres(conn, table, rows)
    rows = _as_text(frame, table)
    return _sqlite(conn, table, rows, rows.columns)


#: Up to this many rows (a small incident, an update adding a few customers), PostgreSQL
#: gets them as one JSON parameter of one statement: encoding and parsing are C loops on
#: both sides, where `executemany` pays a round of Python per row and COPY a set-up per
#: column. (SQLite's `executemany` steps one prepared statement in C already, and its
#: `json_each` would parse each row's object once per column.)
SMALL = 1_000


def _copy(
    cursor: Any, target: str, table: sa.Table, rows: pl.DataFrame, chunk: int = 50_000
) -> None:
    """COPY `rows` in the binary format a chunk at a time, through a queue that a psycopg
    thread drains: the server stores one chunk while numpy encodes the next."""
    from psycopg.copy import QueuedLibpqWriter  # only where PostgreSQL is installed

    names = rows.columns
    column_kinds = pgbinary.kinds(table, names)
    sql = f"COPY {target} ({', '.join(names)}) FROM STDIN WITH (FORMAT binary)"
    with cursor.copy(sql, writer=QueuedLibpqWriter(cursor)) as copy:
        copy.write(pgbinary.HEADER)
        for start, size in _chunks(rows.height, chunk):
            copy.write(pgbinary.encode(rows.slice(start, size), column_kinds))
        copy.write(pgbinary.TRAILER)


def _chunks(n: int, chunk: int) -> Iterator[tuple[int, int]]:
    """(start, size) of each chunk; the first is small, so the server starts sooner."""
    start, size = 0, min(chunk, 5_000)
    while start < n:
        yield start, size
        start, size = start + size, chunk


def _postgres_copy(conn: sa.Connection, table: sa.Table, rows: pl.DataFrame) -> int:
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cursor:
        _copy(cursor, table.name, table, rows)
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


def _postgres_json(
    conn: sa.Connection, table: sa.Table, rows: pl.DataFrame, skip_existing: bool
) -> int:
    """The rows as one JSON array, read as the table's own row type in one INSERT."""
    names = ", ".join(rows.columns)
    sql = (
        f"INSERT INTO {table.name} ({names}) SELECT {names} "
        f"FROM json_populate_recordset(NULL::{table.name}, %s)"
        + (" ON CONFLICT DO NOTHING" if skip_existing else "")
    )
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cursor:
        cursor.execute(sql, (rows.write_json(),))
        return int(cursor.rowcount)


def _postgres(conn: sa.Connection, table: sa.Table, rows: pl.DataFrame) -> int:
    staging = f"staging_{uuid.uuid4().hex[:12]}"
    columns = ", ".join(rows.columns)
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE {staging} (LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        _copy(cursor, staging, table, rows)
        cursor.execute(
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {staging} "
            "ON CONFLICT DO NOTHING"
        )
        inserted = cursor.rowcount
        cursor.execute(f"DROP TABLE {staging}")
    return int(inserted)
