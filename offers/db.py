"""Database engines and migrations: SQLite in the data folder, or PostgreSQL by URL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

MIGRATIONS = Path(__file__).parent / "migrations"

#: Execution option: begin this transaction holding the database's write lock (SQLite).
WRITE_LOCK = "makegood_write_lock"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'makegood.db'}"


def create_engine(url: str) -> sa.Engine:
    """An engine tuned for the ledger: WAL and a busy timeout on SQLite, psycopg 3 on PostgreSQL."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # transactions are begun below, not by sqlite3
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            # A writer that will read-then-write takes the write lock up front, so two
            # processes deciding the same incident are serialized instead of deadlocking.
            immediate = conn.get_execution_options().get(WRITE_LOCK, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def upgrade(engine: sa.Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "heads")


class Read:
    """One SELECT compiled once for an engine, run on a pooled driver connection.

    For the few reads every request makes (an API key's row, a customer's past), where
    SQLAlchemy's per-call work (connection events, a transaction, result objects) costs
    more than the query itself. Each call is one statement on its own, no transaction;
    rows come back as the driver gives them. Parameters must be plain strings or numbers:
    pass times through `db_time`.
    """

    def __init__(self, engine: sa.Engine, statement: sa.ClauseElement) -> None:
        self.engine = engine
        compiled: Any = statement.compile(dialect=engine.dialect)  # a SQLCompiler
        self._compiled = compiled
        self._order: list[str] | None = compiled.positiontup if compiled.positional else None

    def __call__(self, **params: Any) -> list[tuple[Any, ...]]:
        values = self._compiled.construct_params(params)
        args = tuple(values[name] for name in self._order) if self._order else values
        sql, dialect = self._compiled.string, self.engine.dialect
        error = dialect.loaded_dbapi.Error
        try:
            conn = self.engine.raw_connection()
        except error as exc:  # as SQLAlchemy would raise it: callers handle one family
            raise sa.exc.DBAPIError.instance(sql, args, exc, error) from exc
        try:
            cursor = conn.cursor()
            cursor.execute(sql, args)
            rows: list[tuple[Any, ...]] = list(cursor.fetchall())
            cursor.close()
        except error as exc:
            if dialect.is_disconnect(exc, conn.dbapi_connection, None):
                conn.invalidate()  # the pool must not hand this connection out again
            raise sa.exc.DBAPIError.instance(sql, args, exc, error) from exc
        finally:
            conn.close()
        return rows


def db_time(engine: sa.Engine, at: datetime) -> Any:
    """`at` as a `Read` parameter: PostgreSQL's driver takes the time itself; SQLite
    compares the UTC text SQLAlchemy stores."""
    if engine.dialect.name == "postgresql":
        return at
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
