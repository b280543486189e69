"""Bulk writes store every type as given, on both databases (on PostgreSQL both ways:
binary COPY for large frames, statements for small ones)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest
import sqlalchemy as sa

from offers.ledger import bulk
from offers.ledger.bulk import bulk_insert
from offers.ledger.db import create_engine

_TABLE = sa.Table(
    "bulk_probe",
    sa.MetaData(),
    sa.Column("key", sa.String(16), primary_key=True),
    sa.Column("n", sa.Integer),
    sa.Column("big", sa.BigInteger),
    sa.Column("x", sa.Float),
    sa.Column("flag", sa.Boolean),
    sa.Column("day", sa.Date),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("body", sa.Text),
)

_ROWS = pl.DataFrame(
    {
        "key": ["a", "b", "héllo", ""],
        "n": [1, -2, None, 2**31 - 1],
        "big": [None, -5, 2**62, 0],
        "x": [1.5, None, -0.25, 1e300],
        "flag": [True, False, None, True],
        "day": [date(2000, 1, 1), date(1969, 12, 31), None, date(2026, 11, 26)],
        "at": [
            datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC),
            None,
            datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
            datetime(2000, 1, 1, tzinfo=UTC),
        ],
        "body": ['a,b\n"q"', "\\N", None, "x" * 300],
    },
    schema_overrides={"n": pl.Int32, "at": pl.Datetime("us", "UTC")},
)


@pytest.fixture(params=["copy", "statements"], autouse=True)
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which way PostgreSQL is written: every frame as COPY, or every frame as statements."""
    monkeypatch.setattr(bulk, "SMALL", 0 if request.param == "copy" else 10**9)
    return str(request.param)


@pytest.mark.parametrize("skip_existing", [True, False])
def test_rows_read_back_as_written(db_url: str, skip_existing: bool) -> None:
    engine = create_engine(db_url)
    with engine.begin() as conn:
        _TABLE.create(conn)
        assert bulk_insert(conn, _TABLE, _ROWS, skip_existing=skip_existing) == 4
        if skip_existing:
            assert bulk_insert(conn, _TABLE, _ROWS.head(2), skip_existing=True) == 0
        back = conn.execute(sa.select(_TABLE).order_by(_TABLE.c.n.is_(None), _TABLE.c.key)).all()
    engine.dispose()
    expected = sorted(_ROWS.iter_rows(), key=lambda r: (r[1] is None, r[0]))
    as_utc = [
        tuple(v.astimezone(UTC) if isinstance(v, datetime) and v.tzinfo else v for v in row)
        for row in back
    ]
    aware = [
        tuple(v.replace(tzinfo=UTC) if isinstance(v, datetime) and not v.tzinfo else v for v in r)
        for r in as_utc
    ]
    assert aware == expected


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_an_integer_out_of_range_fails_instead_of_wrapping(db_url: str, path: str) -> None:
    """The binary format has no text for the server to reject: the encoder refuses; a
    statement's parameter the server refuses."""
    from psycopg.errors import NumericValueOutOfRange

    refused = pl.exceptions.InvalidOperationError if path == "copy" else NumericValueOutOfRange
    engine = create_engine(db_url)
    with engine.begin() as conn:
        _TABLE.create(conn)
        with pytest.raises(refused):
            bulk_insert(conn, _TABLE, pl.DataFrame({"key": ["a"], "n": [2**40]}))
    engine.dispose()
