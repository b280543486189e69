"""The ledger: every decision issued, exactly once per (incident, step, customer).

An update runs inside one write transaction that first locks the incident (a row lock on
PostgreSQL, the database write lock on SQLite), so concurrent updates of one incident, from
threads, processes or hosts, are serialized: each sees what the previous one recorded,
budgets and caps are checked against committed truth, and INSERT … ON CONFLICT DO NOTHING
on the (incident, step, customer) key makes a repeated write a no-op. The transaction is
`offers.ledger.transaction.Tx`; here are the ways into it and the reads of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from offers.ledger.db import WRITE_LOCK, Read, db_time
from offers.ledger.followups import FOLLOWUP_SCHEMA, FeedPosition
from offers.ledger.reads import STOCK_USED, stock_params, stocked
from offers.ledger.schema import decisions, incidents
from offers.ledger.transaction import Tx

__all__ = ["Ledger"]

log = logging.getLogger(__name__)

#: Per step of an incident, as `Ledger.summary` reads it.
_SUMMARY_SCHEMA: dict[str, Any] = {
    "step": pl.Int32,
    "decisions": pl.Int64,
    "apologies": pl.Int64,
    "perks": pl.Int64,
    "holdout": pl.Int64,
    "needs_human": pl.Int64,
    "cost": pl.Float64,
}


def _preview_read() -> sa.CompoundSelect[Any]:
    """In one statement: the incident's budget (kind 0), the customer's decisions in the
    incident (kind 1) and in others since a time (kind 2)."""
    d, i = decisions.c, incidents.c
    customer = sa.bindparam("customer", type_=d.customer_id.type)
    incident = sa.bindparam("incident", type_=d.incident_id.type)
    return sa.union_all(
        sa.select(
            sa.literal(0),
            sa.null().cast(d.step.type),
            sa.null().cast(d.incident_id.type),
            sa.null().cast(d.perk_id.type),
            i.budget,
        ).where(i.incident_id == incident),
        sa.select(sa.literal(1), d.step, d.incident_id, d.perk_id, d.charged_cost).where(
            d.customer_id == customer, d.incident_id == incident
        ),
        sa.select(sa.literal(2), d.step, d.incident_id, d.perk_id, d.charged_cost).where(
            d.customer_id == customer,
            d.created_at >= sa.bindparam("since"),  # a `db_time`
            d.incident_id != incident,
        ),
    )


class Ledger:
    """The ledger on one database: transactions on it, and the reads outside an update."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._preview_read = Read(engine, _preview_read())
        self._stock_read = Read(engine, STOCK_USED)

    def customer_past(
        self, incident_id: str, customer_id: str, since: datetime
    ) -> tuple[tuple[bool, float | None], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """(whether the incident exists and its budget, the customer's rows of `Tx.history`,
        their decisions in other incidents since `since`) as plain rows, from one statement
        on the customer index: all a preview needs to read."""
        rows = self._preview_read(
            customer=customer_id, incident=incident_id, since=db_time(self.engine, since)
        )
        budget = next(((True, r[4]) for r in rows if r[0] == 0), (False, None))
        history = [(customer_id, r[1], r[3], r[4]) for r in rows if r[0] == 1]
        recent = [(customer_id, r[2], r[3]) for r in rows if r[0] == 2]
        return budget, history, recent

    def stock_used(self, airport: str, perk_ids: Sequence[str], day: datetime) -> dict[str, int]:
        """`Tx.stock_used` as it stands, for a preview: without the airport's stock lock,
        which an update handing out stock there holds until it commits (a preview waited
        for it, and held up every request of its worker meanwhile)."""
        params = stock_params(airport, day)
        rows = self._stock_read(
            airport=airport,
            start=db_time(self.engine, params["start"]),
            end=db_time(self.engine, params["end"]),
        )
        return stocked(rows, perk_ids)

    def refresh_statistics(self) -> None:
        """Renew PostgreSQL's statistics of the decisions, after a large write: until
        autovacuum gets there (a minute or more), reads of the new rows are planned as if
        they were not there, and a page of them can take seconds instead of milliseconds."""
        if self.engine.dialect.name != "postgresql":
            return
        try:
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "ANALYZE decisions"
                )
        except sa.exc.SQLAlchemyError as exc:  # the decisions are committed: only slower reads
            log.warning("could not refresh the statistics of decisions: %s", type(exc).__name__)

    @contextmanager
    def writing(self) -> Iterator[Tx]:
        """A write transaction that holds the write lock from its first statement."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{WRITE_LOCK: True})
            with conn.begin():
                tx = Tx(conn)
                yield tx
                tx.unstage()

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        with self.engine.connect() as conn, conn.begin():
            tx = Tx(conn)
            yield tx
            tx.unstage()

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        with self.reading() as tx:
            return tx.incident(incident_id)

    def decisions(
        self,
        incident_id: str,
        step: int | None = None,
        limit: int | None = None,
        offset: int = 0,
        customer_id: str | None = None,
    ) -> pl.DataFrame:
        with self.reading() as tx:
            return tx.decisions(incident_id, step, limit, offset, customer_id)

    def count(self, incident_id: str, step: int | None = None) -> int:
        with self.reading() as tx:
            return tx.count(incident_id, step)

    def spent(self, incident_id: str) -> float:
        with self.reading() as tx:
            return tx.spent(incident_id)

    def summary(self, incident_id: str) -> pl.DataFrame:
        """Per step: decisions, apologies, perks, holdouts, human flags and cost charged."""
        d = decisions.c
        query = (
            sa.select(
                d.step,
                sa.func.count().label("decisions"),
                sa.func.sum(sa.case((d.message_kind == "apology", 1), else_=0)).label("apologies"),
                sa.func.count(d.perk_id).label("perks"),
                sa.func.sum(sa.case((d.holdout, 1), else_=0)).label("holdout"),
                sa.func.sum(sa.case((d.needs_human, 1), else_=0)).label("needs_human"),
                sa.func.coalesce(sa.func.sum(d.charged_cost), 0.0).label("cost"),
            )
            .where(d.incident_id == incident_id)
            .group_by(d.step)
            .order_by(d.step)
        )
        with self.reading() as tx:
            return tx.plain(query, _SUMMARY_SCHEMA)

    def followups_due(
        self, before: datetime, limit: int = 1000, after: FeedPosition | None = None
    ) -> pl.DataFrame:
        """Follow-ups due before `before`, in the feed's order (`FeedPosition`): the first
        `limit` of them, or the first after the position `after`.

        A row's second follow-up is never due before its first, so both halves are found
        through the index on the first; paging after a position starts the index there."""
        f = decisions.c
        before = before.astimezone(UTC)  # SQLite compares the UTC text it stores
        if after is not None:
            after = (after[0].astimezone(UTC), *after[1:])

        def half(slot: int, kind: Any, at: Any, *due: Any) -> sa.Select[Any]:
            if after is not None:
                due = (*due, at >= after[0])
            nth = sa.literal(slot, sa.Integer).label("slot")
            columns = (f.incident_id, f.step, f.customer_id, nth, kind.label("kind"))
            return sa.select(*columns, at.label("due_at"), f.channel, f.language).where(*due)

        first = half(0, f.followup_kind, f.followup_at, f.followup_at < before)
        then = half(1, f.then_kind, f.then_at, f.followup_at < before, f.then_at < before)
        both = sa.union_all(first, then).subquery()
        order = (both.c.due_at, both.c.incident_id, both.c.step, both.c.customer_id, both.c.slot)
        query = sa.select(*(both.c[c] for c in FOLLOWUP_SCHEMA)).order_by(*order).limit(limit)
        if after is not None:
            types = (f.followup_at.type, f.incident_id.type, sa.Integer(), f.customer_id.type)
            bound = [sa.literal(v, t) for v, t in zip(after, (*types, sa.Integer()), strict=True)]
            query = query.where(sa.tuple_(*order) > sa.tuple_(*bound))
        with self.reading() as tx:
            return tx.plain(query, FOLLOWUP_SCHEMA)
