"""The ledger: every decision issued, exactly once per (incident, step, customer).

An update runs inside one write transaction that first locks the incident (a row lock on
PostgreSQL, the database write lock on SQLite), so concurrent updates of one incident, from
threads, processes or hosts, are serialized: each sees what the previous one recorded,
budgets and caps are checked against committed truth, and INSERT … ON CONFLICT DO NOTHING
on the (incident, step, customer) key makes a repeated write a no-op.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from offers.incidents.kinds import Incident
from offers.ledger.bulk import SMALL, bulk_insert
from offers.ledger.db import WRITE_LOCK, Read, db_time
from offers.ledger.schema import (
    decision_reasons,
    decisions,
    idempotency,
    incident_customers,
    incidents,
)
from offers.record import CODE_MARK, DECISION_COLUMNS, HISTORY_SCHEMA, NAME_MARK, RECENT_SCHEMA

log = logging.getLogger(__name__)

#: The customers of the update in progress, for the joins that must stay proportional to
#: them (caps, follow-up allowances): a temporary table of the transaction, never logged.
AFFECTED = sa.Table(
    "affected_customers",
    sa.MetaData(),
    sa.Column("customer_id", sa.String(64), nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

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

FOLLOWUP_LIST = pl.List(pl.Struct({"due_at": pl.Datetime("us", "UTC"), "kind": pl.String}))

FOLLOWUP_SCHEMA: dict[str, Any] = {
    "incident_id": pl.String,
    "customer_id": pl.String,
    "kind": pl.String,
    "due_at": pl.Datetime("us", "UTC"),
    "channel": pl.String,
    "language": pl.String,
}


#: A decision's follow-ups as stored on its row: the first, and the one after it if any.
STORED_FOLLOWUPS: dict[str, Any] = {
    "followup_kind": pl.String,
    "followup_at": pl.Datetime("us", "UTC"),
    "then_kind": pl.String,
    "then_at": pl.Datetime("us", "UTC"),
}


def paired(planned: pl.DataFrame) -> pl.DataFrame:
    """Follow-ups, one row each, as stored: one row per customer, the next one beside.

    Sorting and shifting, not grouping: a million customers cost two passes, no hash table.
    """
    rows = planned.sort("customer_id", "due_at")
    same = pl.col("customer_id")
    if rows.select((same == same.shift(2)).any()).item():
        raise ValueError("at most two follow-ups per customer are stored")
    nxt = same.shift(-1) == same
    return rows.select(
        "customer_id",
        followup_kind="kind",
        followup_at="due_at",
        then_kind=pl.when(nxt).then(pl.col("kind").shift(-1)),
        then_at=pl.when(nxt).then(pl.col("due_at").shift(-1)),
    ).filter(same.shift(1).ne_missing(same))


def with_followup_lists(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with `followups` (a list of (due_at, kind), earliest first) in place of the
    stored follow-up columns.

    Through a long frame of the follow-ups and one grouping: a list of structs built row
    by row (`concat_list`) costs about 40 times as much.
    """
    rows = frame.with_row_index("_row")
    long = pl.concat(
        [
            rows.select("_row", due_at="followup_at", kind="followup_kind"),
            rows.select("_row", due_at="then_at", kind="then_kind"),
        ]
    ).drop_nulls("kind")
    lists = (
        long.sort("_row", maintain_order=True)
        .group_by("_row", maintain_order=True)
        .agg(followups=pl.struct("due_at", "kind"))
    )
    return (
        rows.join(lists, on="_row", how="left", maintain_order="left")
        .drop("_row", *STORED_FOLLOWUPS)
        .with_columns(pl.col("followups").fill_null(pl.lit([], dtype=FOLLOWUP_LIST)))
    )


#: Decision columns the same for every customer given one wording (of a segment, a perk
#: in a language, a step), kept once per wording in decision_reasons with the reasons.
SHARED = ("segment_description", "perk_title", "perk_value", "currency", "valid_until")
#: Decision columns kept once per wording in decision_reasons (see `Tx.record`).
WORDS = ("reasons", "entitlements", *SHARED)
#: Decision columns `with_words` reads: the words, and the text spliced from its shell.
FROM_WORDING = (*WORDS, "text")
#: Decision columns every row keeps itself.
_COLUMNS = tuple(c for c in DECISION_COLUMNS if c not in FROM_WORDING)


def wordings(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`frame` with `reason_id` naming its whole wording, and the distinct wordings.

    The engine's `reason_id` names the reasons and entitlements; the shared columns and the
    text's shell go into the id too (a stable hash, so a later update of the incident finds
    the ones stored). The engine hands the shell as a `pl.Enum`, so telling a million rows'
    wordings apart costs integer work, not a pass over the texts.
    """
    key = ["reason_id", *SHARED, "text_shell"]
    distinct = (
        frame.select("incident_id", *key, "reasons", "entitlements")
        .unique(key, maintain_order=True)
        .with_columns(pl.col("text_shell").cast(pl.String).alias("_shell"))
    )
    ids = [
        int.from_bytes(
            hashlib.blake2b(msgspec.json.encode(row), digest_size=8).digest(), "big", signed=True
        )
        for row in distinct.select(*key[:-1], "_shell").iter_rows()
    ]
    distinct = distinct.with_columns(_wording=pl.Series(ids, dtype=pl.Int64))
    keyed = frame.join(
        distinct.select(*key, "_wording"),
        on=key,
        how="left",
        nulls_equal=True,
        maintain_order="left",
    )
    words = distinct.drop("reason_id", "text_shell").rename(
        {"_wording": "reason_id", "_shell": "text_shell"}
    )
    return keyed.drop("reason_id").rename({"_wording": "reason_id"}), words


def spliced(shell: Any, perk_code: Any, first_name: Any) -> Any:
    """A message text in SQL from its shell: the code spliced in first, then the name, so
    a name is never scanned for marks (NULL shell, NULL text)."""
    with_code = sa.func.replace(shell, CODE_MARK, sa.func.coalesce(perk_code, ""))
    return sa.func.replace(with_code, NAME_MARK, sa.func.coalesce(first_name, ""))


def with_words(query: sa.Select[Any]) -> sa.Select[Any]:
    """`query` on decisions, with the `FROM_WORDING` columns read from where each row keeps
    them (its own columns in older rows, decision_reasons since: see migrations 0005, 0010,
    and 0013 for the text, spliced from its wording's shell and the row's name and code)."""
    words, d = decision_reasons, decisions.c
    joined = decisions.outerjoin(
        words,
        sa.and_(words.c.incident_id == d.incident_id, words.c.reason_id == d.reason_id),
    )
    text = sa.func.coalesce(d.text, spliced(words.c.text_shell, d.perk_code, d.first_name))
    return query.add_columns(
        *(sa.func.coalesce(d[c], words.c[c]).label(c) for c in WORDS), text.label("text")
    ).select_from(joined)


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


class Tx:
    """One transaction on the ledger; every read and write of an update goes through it."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.staged = False  # `AFFECTED` holds the update's customers
        self.listed: list[str] | None = None  # or this list does
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        self._insert = dialect.insert

    def lock(self, incident_id: str) -> None:
        """Serialize updates of one incident (SQLite already holds the write lock)."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(
                sa.select(incidents.c.incident_id)
                .where(incidents.c.incident_id == incident_id)
                .with_for_update()
            )

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        row = (
            self.conn.execute(sa.select(incidents).where(incidents.c.incident_id == incident_id))
            .mappings()
            .first()
        )
        if row is None:
            return None
        found = dict(row)
        for key in ("occurred_at", "created_at", "updated_at"):
            if found[key] is not None and found[key].tzinfo is None:  # SQLite: stored as UTC
                found[key] = found[key].replace(tzinfo=UTC)
        return found

    def open_incident(
        self,
        incident: Incident,
        step: int,
        customer_ids: Sequence[str],
        now: datetime,
        budget: float | None,
    ) -> list[str]:
        """Record the incident's latest facts and affected customers; return all of them.

        The stored step never goes down: a delay that shrinks claws nothing back. The
        incident row is created first and then locked, so concurrent creators queue up.
        Customers new to the incident are counted; at `step` 0 nobody is decided, so they
        are written down, and from step 1 the decisions of this update name them.
        """
        facts = {f: getattr(incident.facts, f) for f in incident.facts.__struct_fields__}
        created = (
            self.conn.execute(
                self._insert(incidents).on_conflict_do_nothing().returning(incidents.c.incident_id),
                dict(
                    incident_id=incident.incident_id,
                    kind=incident.kind,
                    occurred_at=incident.occurred_at.astimezone(UTC),  # SQLite keeps no offset
                    facts=facts,
                    step=step,
                    created_at=now,
                    updated_at=now,
                    budget=budget,
                    customers=0,
                ),
            ).first()
            is not None
        )
        self.lock(incident.incident_id)
        stored = self.incident(incident.incident_id)
        assert stored is not None
        incoming = pl.DataFrame(
            {"customer_id": list(customer_ids)}, schema={"customer_id": pl.String}
        )
        known = pl.DataFrame(
            {"customer_id": [] if created else self.customers(incident.incident_id)},
            schema={"customer_id": pl.String},
        )
        # Under the lock: only ids the incident does not have yet are new (a replay of a
        # million ids writes nothing).
        new = incoming.unique("customer_id", maintain_order=True).join(
            known, on="customer_id", how="anti"
        )
        values: dict[str, Any] = dict(
            facts=facts,
            kind=incident.kind,
            step=max(step, stored["step"]),
            updated_at=now,
            customers=incidents.c.customers + new.height,
        )
        if budget is not None:
            values["budget"] = budget
        self.conn.execute(
            incidents.update()
            .where(incidents.c.incident_id == incident.incident_id)
            .values(**values)
        )
        if step == 0:
            bulk_insert(
                self.conn,
                incident_customers,
                new.select(incident_id=pl.lit(incident.incident_id), customer_id="customer_id"),
                skip_existing=False,
            )
        return pl.concat([known, new])["customer_id"].to_list()

    def customers(self, incident_id: str) -> list[str]:
        """Everyone the incident affects: those written down and those it decided for."""
        listed = sa.select(incident_customers.c.customer_id).where(
            incident_customers.c.incident_id == incident_id
        )
        decided = sa.select(decisions.c.customer_id).where(decisions.c.incident_id == incident_id)
        found = self.plain(sa.union(listed, decided), {"customer_id": pl.String})
        return found["customer_id"].sort().to_list()  # sorted here: cheaper than in SQL

    def stage(self, customer_ids: Sequence[str]) -> None:
        """Hold the update's customers for `recent` and `followup_customers`.

        Up to `SMALL` of them (most incidents) as a list the queries name; more in the
        temporary table `AFFECTED`, which PostgreSQL drops at commit and SQLite when the
        transaction ends (`Ledger.writing`, `Ledger.reading`)."""
        self.unstage()
        self.listed = list(customer_ids) if len(customer_ids) <= SMALL else None
        if self.listed is not None:
            return
        AFFECTED.create(self.conn)
        self.staged = True
        frame = pl.DataFrame({"customer_id": list(customer_ids)}, schema={"customer_id": pl.String})
        bulk_insert(self.conn, AFFECTED, frame, skip_existing=False)
        if self.conn.dialect.name == "postgresql":
            self.conn.exec_driver_sql(f"ANALYZE {AFFECTED.name}")  # temp tables get no autovacuum

    def unstage(self) -> None:
        """Drop what `stage` held (SQLite would keep it with the pooled connection)."""
        if self.staged:
            AFFECTED.drop(self.conn)
        self.staged, self.listed = False, None

    def _of_staged(self, query: sa.Select[Any], customer: sa.ColumnElement[Any]) -> sa.Select[Any]:
        """`query` narrowed to the staged customers, whose id `customer` holds."""
        if self.listed is not None:
            return query.where(customer.in_(self.listed))
        assert self.staged, "stage() the update's customers first"
        return query.join(AFFECTED, AFFECTED.c.customer_id == customer)

    def plain(
        self, query: sa.Select[Any] | sa.CompoundSelect[Any], schema: dict[str, Any]
    ) -> pl.DataFrame:
        """Rows of a query as columns of `schema`, from the driver's cursor.

        SQLAlchemy still compiles and binds; only its per-row result objects are skipped,
        which is most of the cost of reading a million-customer incident back. SQLite hands
        dates and times over as the text it stores and booleans as integers: they are read
        as such and converted here, column by column.
        """
        result: Any = self.conn.execute(query)
        try:
            rows = result.cursor.fetchall()
        finally:
            result.close()
        if not rows:
            return pl.DataFrame(schema=schema)
        sqlite = self.conn.dialect.name == "sqlite"
        read = {c: _sqlite_read(t) if sqlite else t for c, t in schema.items()}
        columns = zip(*rows, strict=True)
        frame = pl.DataFrame(
            [
                pl.Series(c, values, dtype=t)
                for (c, t), values in zip(read.items(), columns, strict=True)
            ]
        )
        if not sqlite:
            return frame
        return frame.with_columns(_from_sqlite(c, t) for c, t in schema.items() if read[c] != t)

    def history(self, incident_id: str) -> pl.DataFrame:
        """What each customer already got in this incident."""
        query = sa.select(
            decisions.c.customer_id,
            decisions.c.step,
            decisions.c.perk_id,
            decisions.c.charged_cost,
        ).where(decisions.c.incident_id == incident_id)
        return self.plain(query, HISTORY_SCHEMA)

    def recent(self, incident_id: str, since: datetime) -> pl.DataFrame:
        """The staged customers' decisions in other incidents since `since`.

        What caps and human flags count; joined on the update's customers (`stage`) in the
        database so the answer is proportional to them, not to the whole ledger.
        """
        d = decisions.c
        query: sa.Select[Any] = sa.select(d.customer_id, d.incident_id, d.perk_id).where(
            d.created_at >= since, d.incident_id != incident_id
        )
        return self.plain(self._of_staged(query, d.customer_id), RECENT_SCHEMA)

    def stock_used(self, airport: str, perk_ids: Sequence[str], day: datetime) -> dict[str, int]:
        """How many of each stocked perk `airport` gave out on `day` (UTC), under a lock.

        On PostgreSQL an advisory lock per airport serializes every update that hands out
        stocked perks there, across incidents and workers; SQLite's write lock already does.
        """
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"makegood-stock:{airport}"},
            )
        start = day.replace(hour=0, minute=0, second=0, microsecond=0)
        query = (
            sa.select(decisions.c.perk_id, sa.func.count())
            .where(
                decisions.c.airport == airport,
                decisions.c.perk_id.in_(list(perk_ids)),
                decisions.c.created_at >= start,
                decisions.c.created_at < start + timedelta(days=1),
            )
            .group_by(decisions.c.perk_id)
        )
        return {perk: int(n) for perk, n in self.conn.execute(query).all()}

    def spent(self, incident_id: str) -> float:
        query = sa.select(sa.func.coalesce(sa.func.sum(decisions.c.charged_cost), 0.0)).where(
            decisions.c.incident_id == incident_id
        )
        return float(self.conn.execute(query).scalar_one())

    def record(
        self, frame: pl.DataFrame, now: datetime, planned: pl.DataFrame | None = None
    ) -> int:
        """Insert decisions not yet in the ledger, with the follow-ups `planned` for them
        (customer_id, kind, due_at: a row per follow-up, at most two per customer); return
        how many were new.

        Called under the incident's lock with decisions for customers that have none at
        this step, so every key is new and the rows go in without a conflict check. `frame`
        is `decide`'s, with its `LEDGER_ONLY` columns: a row keeps the name, not the text,
        whose shell is kept once with the wording.
        """
        keyed, words = wordings(frame)
        # an earlier update may have stored some of these wordings already
        bulk_insert(self.conn, decision_reasons, words, skip_existing=True)
        rows = keyed.select(*_COLUMNS, "first_name", "reason_id").with_columns(
            created_at=pl.lit(now, dtype=pl.Datetime("us", "UTC"))
        )
        if planned is not None and planned.height:
            rows = rows.join(paired(planned), on="customer_id", how="left", maintain_order="left")
        return bulk_insert(self.conn, decisions, rows, skip_existing=False)

    def followup_customers(self, incident_id: str, since: datetime) -> pl.DataFrame:
        """The staged customers with follow-ups of another incident due since `since`."""
        d = decisions.c
        query = sa.select(d.customer_id).where(
            sa.or_(d.followup_at >= since, d.then_at >= since),
            d.incident_id != incident_id,
        )
        query = self._of_staged(query, d.customer_id).distinct()
        return self.plain(query, {"customer_id": pl.String})

    def decisions(
        self,
        incident_id: str,
        step: int | None = None,
        limit: int | None = None,
        offset: int = 0,
        customer_id: str | None = None,
    ) -> pl.DataFrame:
        """Stored decisions of an incident, by step then customer id, with their follow-ups.

        A page is chosen on the key alone and only its rows are joined to their wordings:
        otherwise a planner without statistics yet (a million rows just written) may splice
        every text of the incident before it sorts and cuts the page."""
        d = decisions.c
        which = [d.incident_id == incident_id]
        if step is not None:
            which.append(d.step == step)
        if customer_id is not None:
            which.append(d.customer_id == customer_id)
        query = with_words(sa.select(*(d[c] for c in (*_COLUMNS, *STORED_FOLLOWUPS))))
        if limit is None and offset == 0:
            query = query.where(*which)
        else:
            page = (
                sa.select(d.incident_id, d.step, d.customer_id)
                .where(*which)
                .order_by(d.step, d.customer_id)
                .offset(offset)
                .limit(limit)
            )
            query = query.where(sa.tuple_(d.incident_id, d.step, d.customer_id).in_(page))
        query = query.order_by(d.step, d.customer_id)
        read = {
            **{c: DECISION_SCHEMA[c] for c in _COLUMNS},
            **STORED_FOLLOWUPS,
            **{c: DECISION_SCHEMA[c] for c in FROM_WORDING},
        }
        frame = self.plain(query, read)
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


class Ledger:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._preview_read = Read(engine, _preview_read())

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
        with self.reading() as tx:
            return tx.stock_used(airport, perk_ids, day)

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

    def customer_count(self, incident_id: str) -> int:
        query = sa.select(incidents.c.customers).where(incidents.c.incident_id == incident_id)
        with self.reading() as tx:
            return int(tx.conn.execute(query).scalar() or 0)

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
        schema = {
            "step": pl.Int32,
            "decisions": pl.Int64,
            "apologies": pl.Int64,
            "perks": pl.Int64,
            "holdout": pl.Int64,
            "needs_human": pl.Int64,
            "cost": pl.Float64,
        }
        with self.reading() as tx:
            return tx.plain(query, schema)

    def followups_due(self, before: datetime, limit: int = 1000) -> pl.DataFrame:
        """Follow-ups due before `before`, earliest first. A row's second follow-up is never
        due before its first, so both halves are found through the index on the first."""
        f = decisions.c

        def half(kind: Any, at: Any, *due: Any) -> sa.Select[Any]:
            columns = (f.incident_id, f.customer_id, kind.label("kind"), at.label("due_at"))
            return sa.select(*columns, f.channel, f.language).where(*due)

        first = half(f.followup_kind, f.followup_at, f.followup_at < before)
        then = half(f.then_kind, f.then_at, f.followup_at < before, f.then_at < before)
        both = sa.union_all(first, then).subquery()
        query = (
            sa.select(*(both.c[c] for c in FOLLOWUP_SCHEMA))
            .order_by(both.c.due_at, both.c.customer_id)
            .limit(limit)
        )
        with self.reading() as tx:
            return tx.plain(query, FOLLOWUP_SCHEMA)

    def remembered(self, key: str) -> tuple[str, int, bytes] | None:
        """(body digest, status, response) stored under an Idempotency-Key, if any."""
        query = sa.select(
            idempotency.c.body_digest, idempotency.c.status_code, idempotency.c.response
        ).where(idempotency.c.key == key)
        with self.reading() as tx:
            row = tx.conn.execute(query).first()
        return (row[0], row[1], bytes(row[2])) if row else None

    def remember(self, key: str, digest: str, status: int, response: bytes, now: datetime) -> None:
        """Store a response under its key; the first one stored wins."""
        with self.writing() as tx:
            tx.conn.execute(
                tx._insert(idempotency).on_conflict_do_nothing(),
                dict(
                    key=key,
                    body_digest=digest,
                    status_code=status,
                    response=response,
                    created_at=now,
                ),
            )
