"""Database engines and migrations: SQLite in the data folder, or PostgreSQL by URL."""

from __future__ import annotations

import threading
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

MIGRATIONS = Path(__file__).parent / "migrations"

#: Execution option: begin this transaction holding the database's write lock (SQLite).
WRITE_LOCK = "makegood_write_lock"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'makegood.db'}"


class DriverMissing(RuntimeError):
    """The database URL names PostgreSQL but its driver is not installed; says what to install."""


def _postgres_driver() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise DriverMissing(
            "MAKEGOOD_DATABASE_URL names PostgreSQL, but its driver (psycopg) is not "
            "installed: pip install 'makegood[postgres]' (from a checkout: pip install "
            "'.[postgres]')"
        ) from exc


def create_engine(url: str) -> sa.Engine:
    """An engine tuned for the ledger: WAL and a busy timeout on SQLite, psycopg 3 on PostgreSQL."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("postgresql+psycopg"):
        _postgres_driver()
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


class _Readers:
    """Driver connections for `Read`, outside the pool and in autocommit: a read is then
    one round trip, without the pool's ping before and rollback after. Kept idle on a
    short stack (one per reading thread at a time), closed with the engine's pool."""

    def __init__(self, engine: sa.Engine, keep: int = 4) -> None:
        # weakly: `_READERS` keys on the engine, and a value holding its key keeps it alive
        self.engine, self.keep = weakref.ref(engine), keep
        self.idle: list[Any] = []
        self.lock = threading.Lock()
        sa.event.listen(engine, "engine_disposed", self.close_idle)

    def take(self) -> tuple[Any, bool]:
        """A connection, and whether it was used before (so it may have gone stale)."""
        with self.lock:
            if self.idle:
                return self.idle.pop(), True
        engine = self.engine()
        assert engine is not None  # a `Read` holds it
        fairy = engine.raw_connection()
        fairy.detach()  # ours now: closing it closes it
        if engine.dialect.name == "postgresql":
            driver: Any = fairy.dbapi_connection
            driver.rollback()
            driver.autocommit = True
        return fairy, False

    def give(self, fairy: Any) -> None:
        with self.lock:
            if len(self.idle) < self.keep:
                self.idle.append(fairy)
                return
        fairy.close()

    def close_idle(self, *_: Any) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for fairy in idle:
            fairy.close()


_READERS: weakref.WeakKeyDictionary[sa.Engine, _Readers] = weakref.WeakKeyDictionary()
_READERS_LOCK = threading.Lock()


def _readers(engine: sa.Engine) -> _Readers:
    with _READERS_LOCK:
        found = _READERS.get(engine)
        if found is None:
            found = _READERS[engine] = _Readers(engine)
        return found


class Read:
    """One SELECT compiled once for an engine, run straight on a driver connection.

    For the few reads every request makes (an API key's row, a customer's past), where
    SQLAlchemy's per-call work (pool checkout with its ping, a transaction, result
    objects) costs more than the query itself. Each call is one statement on its own;
    rows come back as the driver gives them, errors as SQLAlchemy's. Parameters must be
    plain strings or numbers: pass times through `db_time`.
    """

    def __init__(self, engine: sa.Engine, statement: sa.ClauseElement) -> None:
        self.engine = engine
        compiled: Any = statement.compile(dialect=engine.dialect)  # a SQLCompiler
        self._compiled = compiled
        self._order: list[str] | None = compiled.positiontup if compiled.positional else None
        self._readers = _readers(engine)

    def __call__(self, **params: Any) -> list[tuple[Any, ...]]:
        values = self._compiled.construct_params(params)
        args = tuple(values[name] for name in self._order) if self._order else values
        sql, dialect = self._compiled.string, self.engine.dialect
        error = dialect.loaded_dbapi.Error
        for _attempt in range(2):
            try:
                fairy, reused = self._readers.take()
            except error as exc:  # as SQLAlchemy would raise it: callers handle one family
                raise sa.exc.DBAPIError.instance(sql, args, exc, error) from exc
            try:
                cursor = fairy.cursor()
                cursor.execute(sql, args)
                rows: list[tuple[Any, ...]] = list(cursor.fetchall())
                cursor.close()
            except error as exc:
                if not dialect.is_disconnect(exc, fairy.dbapi_connection, None):
                    self._readers.give(fairy)
                    raise sa.exc.DBAPIError.instance(sql, args, exc, error) from exc
                fairy.close()
                if not reused:  # a fresh connection failed too: the database is away
                    raise sa.exc.DBAPIError.instance(sql, args, exc, error) from exc
                continue  # an idle connection went stale (a restart): once more, afresh
            self._readers.give(fairy)
            return rows
        raise AssertionError("unreachable")


def db_time(engine: sa.Engine, at: datetime) -> Any:
    """`at` as a `Read` parameter: PostgreSQL's driver takes the time itself; SQLite
    compares the UTC text SQLAlchemy stores."""
    if engine.dialect.name == "postgresql":
        return at
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
