"""One incident update, from facts to recorded decisions.

This is the whole flow of DESIGN.md for an update: compute the step, find who is affected,
decide for those not yet decided at this step, record exactly once, schedule follow-ups,
and answer with what the ledger holds, so repeated and concurrent calls all get the same
decisions. All of it runs in one transaction that holds the incident's lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import polars as pl

from offers import settling
from offers.catalog import OfferTable
from offers.decide import (
    ContactPolicy,
    Learning,
    StepContext,
    ValuePolicy,
    decide,
)
from offers.followup_plan import PLANNED_SCHEMA, plan, with_followups
from offers.incidents import EscalationPolicy, Incident, entitlements
from offers.ledger import DECISION_SCHEMA, FOLLOWUP_LIST, Ledger, Tx
from offers.messages import MessageBook
from offers.outcome import Outcome, ledger_pages
from offers.past import read_past
from offers.record import LEDGER_ONLY

__all__ = [
    "CHUNK",
    "Decider",
    "Ids",
    "NoTable",
    "Outcome",
    "Parts",
    "Progress",
    "UnknownCustomers",
    "UnknownIncident",
    "apply_update",
    "step_context",
    "unique_ids",
]

#: Customer ids: a list, or a column (ten million Python strings take gigabytes).
Ids = Sequence[str] | pl.Series

#: Reports phases of a long update: (what is happening, share done in [0, 1]).
Progress = Callable[[str, float], None]

#: Decides one step for the affected ids given what they already hold (`history`), their
#: other incidents (`recent`), the step, table and messages: the decisions, and per decided
#: customer `customer_id`, `timezone` and `consent_marketing` (follow-ups are planned on them).
Decider = Callable[
    [list[str], pl.DataFrame, pl.DataFrame, StepContext, OfferTable, MessageBook],
    tuple[pl.DataFrame, pl.DataFrame],
]

#: Decides and records elsewhere (Spark's executors writing PostgreSQL), in the transaction
#: that holds the incident's lock: the Decider's arguments after the transaction and `plan`
#: (decisions and their customers -> the follow-ups to record with them); returns how many
#: decisions were recorded and what they charged.
Recorder = Callable[..., tuple[int, float]]

#: Decisions written in one update after which the planner's statistics are renewed.
REFRESH_STATISTICS_AFTER = 100_000

#: Customers decided at once; more are decided a chunk at a time (`_record_in_chunks`).
CHUNK = 1_000_000


class UnknownCustomers(ValueError):
    """Customer ids with no profile; nothing was recorded."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        shown = ", ".join(repr(i) for i in ids[:10])
        more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
        super().__init__(f"unknown customer ids: {shown}{more}")


class UnknownIncident(LookupError):
    pass


class NoTable(OfferTable, frozen=True, kw_only=True):
    """What `Parts.table` gives while no offer table is live: no rules, no perks, and `why`.

    Decisions then carry the message and what the law owes, no perk, and `why` among
    their reasons: a service with no table still apologizes and pays what is due.
    """

    why: str


@dataclass(frozen=True)
class Parts:
    """What a flow needs: profiles by id, the ledger, the live table, messages, policies."""

    select_profiles: Callable[[Sequence[str]], pl.DataFrame]
    unknown_profiles: Callable[[Sequence[str]], list[str]]
    ledger: Ledger
    #: the live table of an incident kind (a NoTable saying why when none serves it)
    table: Callable[[str], OfferTable]
    book: MessageBook
    policy: EscalationPolicy
    contact: ContactPolicy = field(default_factory=ContactPolicy)
    value: ValuePolicy = field(default_factory=ValuePolicy)
    entitlements: Callable[[Incident], tuple[list[dict[str, Any]], str | None]] = entitlements
    #: Posteriors for learning among rules' alternatives (offers.learning.evidence.LearningSource).
    learning: Callable[[datetime], Learning | None] | None = None
    #: One segmented profile by id, in O(1) (ProfileBook.one); previews use it.
    profile: Callable[[str], dict[str, Any] | None] | None = None

    def escalation(self, kind: str) -> EscalationPolicy:
        """`policy` for flight delays; each other kind has its own default rhythm."""
        return self.policy if kind == "flight_delay" else EscalationPolicy.for_kind(kind)


def apply_update(
    parts: Parts,
    incident: Incident,
    customer_ids: Ids | Callable[[], Ids],
    now: datetime,
    *,
    dry_run: bool = False,
    must_exist: bool = False,
    budget: float | None = None,
    progress: Progress = lambda _message, _done: None,
    decider: Decider | None = None,
    chunk_size: int = CHUNK,
    recorder: Recorder | None = None,
) -> Outcome:
    """Decide the incident's current step for everyone affected who lacks a decision.

    `customer_ids` may be a function that names them (a selector: `offers.selectors`),
    called inside the update's transaction. `decider` decides elsewhere (on Spark's
    executors); reading and recording stay here. `recorder` (not in a dry run) decides and
    records elsewhere; the lock stays here. More than `chunk_size` customers are decided
    and recorded a chunk at a time, with stock and budget settled over all of them
    (`offers.settling.record_in_chunks`).
    """
    progress("checking customers", 0.0)
    resolver = customer_ids if callable(customer_ids) else None
    ids = unique_ids([]) if callable(customer_ids) else _known(parts, customer_ids)
    step = parts.escalation(incident.kind).step(incident.facts.delay_minutes)
    owed, note = parts.entitlements(incident)  # before any write: bad facts write nothing
    opener = parts.ledger.reading if dry_run else parts.ledger.writing
    ledger, incident_id = parts.ledger, incident.incident_id
    with opener() as tx:
        stored = tx.incident(incident_id)
        if must_exist and stored is None:
            raise UnknownIncident(incident_id)
        if resolver is not None:
            # A selector is resolved under the incident's lock (SQLite: the write lock),
            # so concurrent updates of one incident resolve it one after the other.
            if not dry_run:
                tx.lock(incident_id)
            progress("resolving the customers", 0.02)
            ids = _known(parts, resolver())
        if dry_run:
            known = pl.Series("customer_id", tx.customers(incident_id) if stored else [], pl.String)
            affected = unique_ids(pl.concat([known, ids])) if known.len() else ids
            budget = budget if budget is not None else (stored or {}).get("budget")
            created = stored is None
        else:
            affected, created, budget = tx.open_incident(incident, step, ids, now, budget)
        outcome = partial(
            Outcome, incident_id, step, incident.facts.delay_minutes, budget=budget, created=created
        )
        if step == 0:
            empty = pl.DataFrame(schema={**DECISION_SCHEMA, "followups": FOLLOWUP_LIST})
            spent = tx.spent(incident_id)
            return outcome(0, lambda: empty, dry_run, spent=spent, total=0, charged=0.0)
        fresh_incident = created  # (a dry run: whether it would be)
        before = 0 if fresh_incident else tx.count(incident_id, step)
        if not created and before >= len(affected):
            # Everyone already has this step's decision (a replay, or a retry of a request
            # that was answered): nothing to decide, the ledger has the answer.
            return outcome(
                0,
                lambda: ledger.decisions(incident_id, step=step),
                dry_run,
                total=before,
                charged=tx.spent(incident_id, step),
                spent=tx.spent(incident_id),
                page=ledger_pages(ledger, incident_id, step),
            )
        progress(f"loading {len(affected):,} profiles", 0.1)
        history, recent, busy = read_past(
            tx, incident_id, affected, now, parts.contact, fresh_incident
        )
        spent = float(history["charged_cost"].fill_null(0.0).sum())
        table = parts.table(incident.kind)
        ctx = step_context(parts, tx, table, incident, step, now, (owed, note), budget, spent)
        chunked = False  # recorded without holding the decisions here
        if recorder is not None and not dry_run:
            progress(f"deciding step {step} for {len(affected):,} customers", 0.25)
            planner = partial(plan, busy=busy, now=now, policy=parts.contact)
            issued, fresh_cost = recorder(
                tx, planner, affected.to_list(), history, recent, ctx, table, parts.book
            )
            spent += fresh_cost
            charged = fresh_cost if before == 0 else tx.spent(incident_id, step)
            chunked = True
        elif decider is None and not dry_run and len(affected) > chunk_size:
            issued, fresh_cost = settling.record_in_chunks(
                parts.select_profiles,
                tx,
                affected,
                (history, recent, busy),
                ctx,
                table,
                parts.book,
                parts.contact,
                chunk_size,
                progress,
            )
            spent += fresh_cost  # under the lock: exact
            charged = fresh_cost if before == 0 else tx.spent(incident_id, step)
            chunked = True
        else:
            progress(f"deciding step {step} for {len(affected):,} customers", 0.25)
            # Spark's decider takes a list; here the column is enough
            who: Any = affected if decider is None else affected.to_list()
            fresh, customers = (decider or _decide_here(parts))(
                who, history, recent, ctx, table, parts.book
            )
            del history, recent
            fresh = fresh.cast(DECISION_SCHEMA)  # type: ignore[arg-type]
            fresh_cost = float(fresh["charged_cost"].fill_null(0.0).sum())
            if dry_run:
                stored_cost = 0.0 if fresh_incident else tx.spent(incident_id, step)
                unsaved = fresh.drop(LEDGER_ONLY).with_columns(
                    followups=pl.lit([], dtype=FOLLOWUP_LIST)
                )

                unsaved = unsaved.sort("customer_id")
                stored_page = ledger_pages(ledger, incident_id, step)

                def both() -> pl.DataFrame:
                    if before == 0:
                        return unsaved
                    stored_now = ledger.decisions(incident_id, step=step)
                    return pl.concat([stored_now, unsaved]).sort("customer_id")

                def page(after: str | None, size: int) -> pl.DataFrame:
                    mine = (
                        unsaved if after is None else unsaved.filter(pl.col("customer_id") > after)
                    )
                    if before == 0:
                        return mine.head(size)
                    both = pl.concat([stored_page(after, size), mine.head(size)])
                    return both.sort("customer_id").head(size)

                return outcome(
                    0,
                    both,
                    True,
                    spent=spent,
                    total=before + unsaved.height,
                    charged=stored_cost + fresh_cost,
                    page=page,
                )
            planned = plan(fresh, customers, busy, now, parts.contact)
            del customers
            progress(f"recording {fresh.height:,} decisions", 0.6)
            issued = tx.record(fresh, now, planned)
            planned = planned.select(list(PLANNED_SCHEMA))
            fresh = fresh.drop(LEDGER_ONLY)
            spent += fresh_cost  # under the lock: exact
            charged = fresh_cost if before == 0 else tx.spent(incident_id, step)
    progress("done", 1.0)
    if issued >= REFRESH_STATISTICS_AFTER:
        ledger.refresh_statistics()  # after the commit, outside the lock
    if chunked:
        return outcome(
            issued,
            lambda: ledger.decisions(incident_id, step=step),
            total=before + issued,
            charged=charged,
            spent=spent,
            page=ledger_pages(ledger, incident_id, step),
        )
    only_fresh = before == 0 and issued == fresh.height

    def load() -> pl.DataFrame:
        if only_fresh:
            # Under the incident's lock nothing else wrote this step: the ledger holds
            # exactly the fresh decisions, so there is nothing to read back (and a job
            # that only reports counts never joins the follow-ups on).
            return with_followups(fresh, planned).sort("customer_id")
        return ledger.decisions(incident_id, step=step)

    return Outcome(
        incident_id,
        step,
        incident.facts.delay_minutes,
        issued,
        load,
        budget=budget,
        spent=spent,
        created=created,
        total=before + issued,
        charged=charged,
        page=None if only_fresh else ledger_pages(ledger, incident_id, step),
    )


def _known(parts: Parts, customer_ids: Ids) -> pl.Series:
    """The ids once each, in the order given; refused if any has no profile."""
    ids = unique_ids(customer_ids)
    unknown = parts.unknown_profiles(ids)  # type: ignore[arg-type]
    if unknown:
        raise UnknownCustomers(unknown)
    return ids


def unique_ids(customer_ids: Ids) -> pl.Series:
    """The ids once each, in the order first given, as a column (not Python strings)."""
    series = pl.Series("customer_id", customer_ids, dtype=pl.String)
    return series.unique(maintain_order=True)


def _decide_here(parts: Parts) -> Decider:
    """The engine in this process, over the profiles `parts` holds."""

    def run(
        affected: Any,
        history: pl.DataFrame,
        recent: pl.DataFrame,
        ctx: StepContext,
        table: OfferTable,
        book: MessageBook,
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        customers = parts.select_profiles(affected)
        return decide(customers, history, recent, ctx, table, book), customers

    return run


def step_context(
    parts: Parts,
    tx: Tx | Ledger,
    table: OfferTable,
    incident: Incident,
    step: int,
    now: datetime,
    owed: tuple[list[dict[str, Any]], str | None],
    budget: float | None,
    spent: float,
) -> StepContext:
    """What the engine needs to know about the step, the same for every customer.

    Stock is read through `tx` (an update's transaction, or the ledger for a preview)."""
    return StepContext(
        incident=incident,
        step=step,
        now=now,
        policy=parts.contact,
        budget_left=None if budget is None else max(budget - spent, 0.0),
        entitlements=owed[0],
        entitlement_note=owed[1],
        learning=parts.learning(now) if parts.learning else None,
        value=parts.value,
        stock_left=_stock_left(tx, table, incident.facts.origin, now),
        table_note=table.why if isinstance(table, NoTable) else None,
    )


def _stock_left(
    tx: Tx | Ledger, table: OfferTable, airport: str | None, now: datetime
) -> dict[str, int]:
    """Per stocked perk, what is left today at the incident's airport (none: no limit)."""
    if airport is None:
        return {}
    limits = {p.id: s.per_day for p in table.perks for s in p.stock if s.airport == airport}
    if not limits:
        return {}
    used = tx.stock_used(airport, list(limits), now)
    return {perk: max(limit - used.get(perk, 0), 0) for perk, limit in limits.items()}
