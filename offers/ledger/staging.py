"""Decisions written by many processes at once, recorded by one under the incident's lock.

When Spark's executors decide an incident, each partition writes its finished decisions
itself (`write`, binary COPY into two unlogged tables made for this update), so no
process ever holds every decision. The process that holds the incident's lock then
records them in one statement each (`merge`: insert-select, skipping keys already there)
and drops the tables in the same transaction: the decisions appear all at once or not at
all. Should anything fail first, `drop` removes the tables. PostgreSQL only: an SQLite
file cannot be written from other machines.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

import offers.ledger.pgbinary as pgbinary
from offers.ledger.followups import paired
from offers.ledger.schema import decision_reasons, decisions
from offers.ledger.wording import ROW_COLUMNS, wordings

__all__ = ["Staging", "ledger_rows"]


def ledger_rows(
    fresh: pl.DataFrame, now: datetime, planned: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(decision rows, wordings) as `Tx.record` stores `decide`'s frame: the wording ids are
    stable hashes, so each partition's equal the whole frame's."""
    keyed, words = wordings(fresh)
    rows = keyed.select(*ROW_COLUMNS, "first_name", "reason_id").with_columns(
        created_at=pl.lit(now, dtype=pl.Datetime("us", "UTC"))
    )
    if planned is not None and planned.height:
        rows = rows.join(paired(planned), on="customer_id", how="left", maintain_order="left")
    return rows, words


def _copy(cursor: Any, target: str, table: sa.Table, frame: pl.DataFrame) -> None:
    rows = frame.select(c.name for c in table.columns if c.name in frame.columns)
    if rows.is_empty():
        return
    names = rows.columns
    sql = f"COPY {target} ({', '.join(names)}) FROM STDIN WITH (FORMAT binary)"
    column_kinds = pgbinary.kinds(table, names)
    with cursor.copy(sql) as copy:
        copy.write(pgbinary.HEADER)
        for start in range(0, rows.height, 50_000):
            copy.write(pgbinary.encode(rows.slice(start, 50_000), column_kinds))
        copy.write(pgbinary.TRAILER)


@dataclass(frozen=True)
class Staging:
    """One update's two staging tables and how to reach them from another machine."""

    conninfo: str
    rows: str
    words: str

    @classmethod
    def create(cls, engine: sa.Engine) -> Staging:
        """Make the tables (committed at once: the writers are other connections)."""
        if engine.dialect.name != "postgresql":
            raise ValueError("decisions are staged on PostgreSQL only")
        key = uuid.uuid4().hex[:16]
        staging = cls(
            conninfo=engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
            rows=f"staged_decisions_{key}",
            words=f"staged_wordings_{key}",
        )
        with engine.connect() as conn:
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            for name, table in ((staging.rows, decisions), (staging.words, decision_reasons)):
                auto.exec_driver_sql(
                    f"CREATE UNLOGGED TABLE {name} (LIKE {table.name} INCLUDING DEFAULTS)"
                )
        return staging

    def write(self, rows: pl.DataFrame, words: pl.DataFrame) -> None:
        """Copy one part's rows and wordings in, in one transaction of its own."""
        import psycopg

        with psycopg.connect(self.conninfo) as conn, conn.cursor() as cursor:
            _copy(cursor, self.rows, decisions, rows)
            _copy(cursor, self.words, decision_reasons, words)

    def merge(self, conn: sa.Connection) -> tuple[int, float]:
        """Record what the parts wrote, inside the caller's transaction (which holds the
        incident's lock), and drop the tables with it: (decisions new, what they charged).
        A part written twice (a retried task) is recorded once."""
        words = ", ".join(c.name for c in decision_reasons.columns)
        conn.exec_driver_sql(
            f"INSERT INTO {decision_reasons.name} ({words}) "
            f"SELECT DISTINCT ON (incident_id, reason_id) {words} FROM {self.words} "
            "ON CONFLICT DO NOTHING"
        )
        columns = ", ".join(c.name for c in decisions.columns)
        row = conn.exec_driver_sql(
            f"WITH recorded AS (INSERT INTO {decisions.name} ({columns}) "
            f"SELECT {columns} FROM {self.rows} ON CONFLICT DO NOTHING RETURNING charged_cost) "
            "SELECT count(*), coalesce(sum(charged_cost), 0) FROM recorded"
        ).one()
        conn.exec_driver_sql(f"DROP TABLE {self.rows}, {self.words}")
        return int(row[0]), float(row[1])

    def drop(self, engine: sa.Engine) -> None:
        """Remove the tables if they are still there (an update that failed part-way)."""
        with engine.connect() as conn:
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            auto.exec_driver_sql(f"DROP TABLE IF EXISTS {self.rows}, {self.words}")
