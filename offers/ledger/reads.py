"""What an update reads inside its transaction: the incident, its customers, what they got
here and elsewhere, stock used, decisions stored. Reads of the staged customers stay
proportional to them (`TxReads.stage`), not to the whole ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from offers.ledger.bulk import SMALL, bulk_insert
from offers.ledger.followups import STORED_FOLLOWUPS, with_followup_lists
from offers.ledger.frames import DECISION_SCHEMA, read_frame
from offers.ledger.schema import decisions, incident_customers, incidents
from offers.ledger.wording import FROM_WORDING, ROW_COLUMNS, with_words
from offers.record import DECISION_COLUMNS, HISTORY_SCHEMA

__all__ = ["AFFECTED", "TxReads"]

#: The customers of the update in progress, for the joins that must stay proportional to
#: them (caps, follow-up allowances): a temporary table of the transaction, never logged.
AFFECTED = sa.Table(
    "affected_customers",
    sa.MetaData(),
    sa.Column("customer_id", sa.String(64), nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

#: How `TxReads.decisions` reads a decision: the row's own columns, its stored follow-ups,
#: then what it takes from its wording (the order `with_words` adds them in).
_DECISION_READ: dict[str, Any] = {
    **{c: DECISION_SCHEMA[c] for c in ROW_COLUMNS},
    **STORED_FOLLOWUPS,
    **{c: DECISION_SCHEMA[c] for c in FROM_WORDING},
}


#: Perks given at an airport in a time range, per perk, through `ix_decisions_stock`
#: (`stock_params` gives its parameters; `stocked` keeps the perks asked about).
STOCK_USED = (
    sa.select(decisions.c.perk_id, sa.func.count())
    .where(
        decisions.c.airport == sa.bindparam("airport", type_=decisions.c.airport.type),
        decisions.c.perk_id.is_not(None),
        decisions.c.created_at >= sa.bindparam("start"),  # `db_time`s
        decisions.c.created_at < sa.bindparam("end"),
    )
    .group_by(decisions.c.perk_id)
)


def stock_params(airport: str, day: datetime) -> dict[str, Any]:
    """`STOCK_USED`'s parameters for `day` (UTC) at `airport` (through `db_time` for `Read`)."""
    start = day.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return {"airport": airport, "start": start, "end": start + timedelta(days=1)}


def stocked(rows: Sequence[Any], perk_ids: Sequence[str]) -> dict[str, int]:
    wanted = set(perk_ids)
    return {perk: int(n) for perk, n in rows if perk in wanted}


class TxReads:
    """The reads of one transaction on the ledger, and the update's customers staged for them."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.staged = False  # `AFFECTED` holds the update's customers
        self.listed: list[str] | None = None  # or this list does

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        row = (
            self.conn.execute(sa.select(incidents).where(incidents.c.incident_id == incident_id))
            .mappings()
            .first()
        )
        return None if row is None else _aware(dict(row))

    def customers(self, incident_id: str) -> list[str]:
        """Everyone the incident affects: those written down and those it decided for."""
        listed = sa.select(incident_customers.c.customer_id).where(
            incident_customers.c.incident_id == incident_id
        )
        decided = sa.select(decisions.c.customer_id).where(decisions.c.incident_id == incident_id)
        ids = {"customer_id": pl.String}
        found = pl.concat([self.plain(listed, ids), self.plain(decided, ids)])
        # made unique and sorted here: cheaper than SQL's UNION of a million ids
        return found["customer_id"].unique().sort().to_list()

    def stage(self, customer_ids: Sequence[str] | pl.Series) -> None:
        """Hold the update's customers for the reads narrowed to them (`of_staged`).

        Up to `SMALL` of them (most incidents) as a list the queries name; more in the
        temporary table `AFFECTED`, which PostgreSQL drops at commit and SQLite when the
        transaction ends (`Ledger.writing`, `Ledger.reading`)."""
        self.unstage()
        self.listed = list(customer_ids) if len(customer_ids) <= SMALL else None
        if self.listed is not None:
            return
        AFFECTED.create(self.conn)
        self.staged = True
        frame = pl.DataFrame({"customer_id": customer_ids}, schema={"customer_id": pl.String})
        bulk_insert(self.conn, AFFECTED, frame, skip_existing=False)
        if self.conn.dialect.name == "postgresql":
            self.conn.exec_driver_sql(f"ANALYZE {AFFECTED.name}")  # temp tables get no autovacuum

    def unstage(self) -> None:
        """Drop what `stage` held (SQLite would keep it with the pooled connection)."""
        if self.staged:
            AFFECTED.drop(self.conn)
        self.staged, self.listed = False, None

    def of_staged(self, query: sa.Select[Any], customer: sa.ColumnElement[Any]) -> sa.Select[Any]:
        """`query` narrowed to the staged customers, whose id `customer` holds."""
        if self.listed is not None:
            if self.conn.dialect.name == "postgresql":
                # One array parameter, not one per id: the statement's text is the same for
                # every update, so psycopg prepares it once, and the planner probes the
                # customer index for the array whatever the table's statistics say.
                ids = sa.bindparam("staged_ids", self.listed, type_=ARRAY(sa.String))
                return query.where(customer == sa.any_(ids))
            return query.where(customer.in_(self.listed))
        assert self.staged, "stage() the update's customers first"
        return query.join(AFFECTED, AFFECTED.c.customer_id == customer)

    def plain(
        self, query: sa.Select[Any] | sa.CompoundSelect[Any], schema: dict[str, Any]
    ) -> pl.DataFrame:
        """Rows of a query as columns of `schema` (see `offers.ledger.frames.read_frame`)."""
        return read_frame(self.conn, query, schema)

    def history(self, incident_id: str) -> pl.DataFrame:
        """What each customer already got in this incident."""
        query = sa.select(
            decisions.c.customer_id,
            decisions.c.step,
            decisions.c.perk_id,
            decisions.c.charged_cost,
        ).where(decisions.c.incident_id == incident_id)
        return self.plain(query, HISTORY_SCHEMA)

    def others_since(self, incident_id: str, since: datetime) -> bool:
        """Whether an incident other than this one was updated since `since`.

        Every decision is made by an update of its incident, which stamps `updated_at`, so
        when none was, no decision of another incident is that recent: the caps'
        and follow-ups' reads of the customers have nothing to find (one small read
        instead of staging a million ids)."""
        query = (
            sa.select(incidents.c.incident_id)
            .where(
                incidents.c.updated_at >= since.astimezone(UTC),
                incidents.c.incident_id != incident_id,
            )
            .limit(1)
        )
        return self.conn.execute(query).first() is not None

    def stock_used(self, airport: str, perk_ids: Sequence[str], day: datetime) -> dict[str, int]:
        """How many of each stocked perk `airport` gave out on `day` (UTC), under a lock.

        On PostgreSQL an advisory lock per airport serializes every update that hands out
        stocked perks there, across incidents and workers; SQLite's write lock already does.
        """
        self._lock_stock(airport)
        rows = self.conn.execute(STOCK_USED, stock_params(airport, day)).all()
        return stocked(rows, perk_ids)

    def _lock_stock(self, airport: str) -> None:
        """Take the transaction's advisory lock on `airport`'s stock (PostgreSQL only)."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"makegood-stock:{airport}"},
            )

    def spent(self, incident_id: str, step: int | None = None) -> float:
        """What the incident's decisions charged (at `step` only, if given)."""
        query = sa.select(sa.func.coalesce(sa.func.sum(decisions.c.charged_cost), 0.0)).where(
            *_which(incident_id, step, None)
        )
        return float(self.conn.execute(query).scalar_one())

    def decisions(
        self,
        incident_id: str,
        step: int | None = None,
        limit: int | None = None,
        offset: int = 0,
        customer_id: str | None = None,
        after: str | None = None,
    ) -> pl.DataFrame:
        """Stored decisions of an incident, by step then customer id, with their follow-ups;
        with `after` (and a `step`), only those of customers after that id.

        A page is chosen on the key alone and only its rows are joined to their wordings:
        otherwise a planner without statistics yet (a million rows just written) may splice
        every text of the incident before it sorts and cuts the page. `after` pages through
        a step on the key's index, where an offset would walk every row before the page."""
        d = decisions.c
        which = _which(incident_id, step, customer_id)
        if after is not None:
            which.append(d.customer_id > after)
        query = with_words(sa.select(*(d[c] for c in (*ROW_COLUMNS, *STORED_FOLLOWUPS))))
        query = _paged(query, which, limit, offset).order_by(d.step, d.customer_id)
        frame = self.plain(query, _DECISION_READ)
        return with_followup_lists(frame.select(*DECISION_COLUMNS, *STORED_FOLLOWUPS))

    def count(self, incident_id: str, step: int | None = None) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(decisions)
            .where(decisions.c.incident_id == incident_id)
        )
        if step is not None:
            query = query.where(decisions.c.step == step)
        return int(self.conn.execute(query).scalar_one())


def _aware(incident: dict[str, Any]) -> dict[str, Any]:
    """An incident row with its times in UTC (SQLite stores them as UTC, without an offset)."""
    for key in ("occurred_at", "created_at", "updated_at"):
        if incident[key] is not None and incident[key].tzinfo is None:
            incident[key] = incident[key].replace(tzinfo=UTC)
    return incident


def _which(
    incident_id: str, step: int | None, customer_id: str | None
) -> list[sa.ColumnElement[bool]]:
    """Conditions on decisions: of the incident, and of the step and customer if given."""
    d = decisions.c
    which = [d.incident_id == incident_id]
    if step is not None:
        which.append(d.step == step)
    if customer_id is not None:
        which.append(d.customer_id == customer_id)
    return which


def _paged(
    query: sa.Select[Any], which: list[sa.ColumnElement[bool]], limit: int | None, offset: int
) -> sa.Select[Any]:
    """`query` on the decisions `which` names, cut to the page on the key alone if asked."""
    if limit is None and offset == 0:
        return query.where(*which)
    d = decisions.c
    page = (
        sa.select(d.incident_id, d.step, d.customer_id)
        .where(*which)
        .order_by(d.step, d.customer_id)
        .offset(offset)
        .limit(limit)
    )
    return query.where(sa.tuple_(d.incident_id, d.step, d.customer_id).in_(page))
