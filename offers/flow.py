"""One incident update, from facts to recorded decisions.

This is the whole flow of DESIGN.md for an update: compute the step, find who is affected,
decide for those not yet decided at this step, record exactly once, schedule follow-ups,
and answer with what the ledger holds, so repeated and concurrent calls all get the same
decisions. All of it runs in one transaction that holds the incident's lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, partial
from typing import Any

import polars as pl

from offers.catalog import OfferTable
from offers.decide import (
    ContactPolicy,
    Learning,
    StepContext,
    ValuePolicy,
    decide,
    schedule_followups,
)
from offers.incidents import EscalationPolicy, Incident, entitlements
from offers.ledger import DECISION_SCHEMA, FOLLOWUP_LIST, Ledger, Tx
from offers.ledger.around import read_around
from offers.messages import MessageBook
from offers.record import LEDGER_ONLY

#: Reports phases of a long update: (what is happening, share done in [0, 1]).
Progress = Callable[[str, float], None]

PLANNED_SCHEMA: dict[str, Any] = {
    "customer_id": pl.String,
    "kind": pl.String,
    "due_at": pl.Datetime("us", "UTC"),
}


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


@dataclass
class Outcome:
    """What an update did. `decisions` (every decision at this step) is read on first use:
    a million-customer job reports counts and never needs them in memory twice."""

    incident_id: str
    step: int
    delay_minutes: int
    issued: int
    load: Callable[[], pl.DataFrame]
    dry_run: bool = False
    budget: float | None = None
    spent: float = 0.0
    #: This update opened the incident (decided under its lock: concurrent creators of one
    #: incident see it true exactly once). A dry run says whether it would.
    created: bool = False

    @cached_property
    def decisions(self) -> pl.DataFrame:
        return self.load()

    @property
    def cost(self) -> float:
        """What this step's decisions charged against the incident (upgrades: the difference)."""
        return float(self.decisions["charged_cost"].fill_null(0.0).sum())


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
    customer_ids: Sequence[str],
    now: datetime,
    *,
    dry_run: bool = False,
    must_exist: bool = False,
    budget: float | None = None,
    progress: Progress = lambda _message, _done: None,
    decider: Decider | None = None,
    recorder: Recorder | None = None,
) -> Outcome:
    """Decide the incident's current step for everyone affected who lacks a decision.

    `decider` decides elsewhere (on Spark's executors); reading and recording stay here.
    `recorder` (not in a dry run) decides and records elsewhere; the lock stays here.
    """
    progress("checking customers", 0.0)
    ids = list(dict.fromkeys(customer_ids))
    unknown = parts.unknown_profiles(ids)
    if unknown:
        raise UnknownCustomers(unknown)
    step = parts.escalation(incident.kind).step(incident.facts.delay_minutes)
    owed, note = parts.entitlements(incident)  # before any write: bad facts write nothing
    opener = parts.ledger.reading if dry_run else parts.ledger.writing
    with opener() as tx:
        stored = tx.incident(incident.incident_id)
        if must_exist and stored is None:
            raise UnknownIncident(incident.incident_id)
        if dry_run:
            known = tx.customers(incident.incident_id) if stored else []
            affected = list(dict.fromkeys([*known, *ids]))
            budget = budget if budget is not None else (stored or {}).get("budget")
            created = stored is None
        else:
            affected, created, budget = tx.open_incident(incident, step, ids, now, budget)
        if step == 0:
            spent = tx.spent(incident.incident_id)
            empty = pl.DataFrame(schema={**DECISION_SCHEMA, "followups": FOLLOWUP_LIST})
            return Outcome(
                incident.incident_id,
                0,
                incident.facts.delay_minutes,
                0,
                lambda: empty,
                dry_run,
                budget,
                spent,
                created,
            )
        if not dry_run and not created and tx.count(incident.incident_id, step) >= len(affected):
            # Everyone already has this step's decision (a replay, or a retry of a request
            # that was answered): nothing to decide, the ledger has the answer.
            ledger, incident_id = parts.ledger, incident.incident_id
            return Outcome(
                incident_id,
                step,
                incident.facts.delay_minutes,
                0,
                lambda: ledger.decisions(incident_id, step=step),
                budget=budget,
                spent=tx.spent(incident_id),
                created=created,
            )
        progress(f"loading {len(affected):,} profiles", 0.1)
        tx.stage(affected)
        since = now - timedelta(days=parts.contact.window_days)
        around = read_around(tx, incident.incident_id, since)
        spent, before = around.spent, around.count(step)
        table = parts.table(incident.kind)
        ctx = step_context(parts, tx, table, incident, step, now, (owed, note), budget, spent)
        progress(f"deciding step {step} for {len(affected):,} customers", 0.25)
        if recorder is not None and not dry_run:
            plan = partial(_plan, busy=around.busy, now=now, policy=parts.contact)
            issued, charged = recorder(
                tx, plan, affected, around.history, around.recent, ctx, table, parts.book
            )
            ledger, incident_id = parts.ledger, incident.incident_id
            return Outcome(
                incident_id,
                step,
                incident.facts.delay_minutes,
                issued,
                lambda: ledger.decisions(incident_id, step=step),
                budget=budget,
                spent=spent + charged,
                created=created,
            )
        fresh, customers = (decider or _decide_here(parts))(
            affected, around.history, around.recent, ctx, table, parts.book
        )
        fresh = fresh.cast(DECISION_SCHEMA)  # type: ignore[arg-type]
        if dry_run:
            stored_now = tx.decisions(incident.incident_id, step=step)
            unsaved = fresh.drop(LEDGER_ONLY).with_columns(
                followups=pl.lit([], dtype=FOLLOWUP_LIST)
            )
            both = pl.concat([stored_now, unsaved]).sort("customer_id")
            return Outcome(
                incident.incident_id,
                step,
                incident.facts.delay_minutes,
                0,
                lambda: both,
                True,
                budget,
                spent,
                created,
            )
        planned = _plan(fresh, customers, around.busy, now, parts.contact)
        progress(f"recording {fresh.height:,} decisions", 0.6)
        issued = tx.record(fresh, now, planned)
        planned = planned.select(list(PLANNED_SCHEMA))
        fresh = fresh.drop(LEDGER_ONLY)
        spent += float(fresh["charged_cost"].fill_null(0.0).sum())  # under the lock: exact
    progress("done", 1.0)
    ledger, incident_id = parts.ledger, incident.incident_id
    if issued >= REFRESH_STATISTICS_AFTER:
        ledger.refresh_statistics()  # after the commit, outside the lock
    only_fresh = before == 0 and issued == fresh.height

    def load() -> pl.DataFrame:
        if only_fresh:
            # Under the incident's lock nothing else wrote this step: the ledger holds
            # exactly the fresh decisions, so there is nothing to read back (and a job
            # that only reports counts never joins the follow-ups on).
            return _with_followups(fresh, planned).sort("customer_id")
        return ledger.decisions(incident_id, step=step)

    return Outcome(
        incident.incident_id,
        step,
        incident.facts.delay_minutes,
        issued,
        load,
        budget=budget,
        spent=spent,
        created=created,
    )


def _decide_here(parts: Parts) -> Decider:
    """The engine in this process, over the profiles `parts` holds."""

    def run(
        affected: list[str],
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


def _with_followups(fresh: pl.DataFrame, planned: pl.DataFrame) -> pl.DataFrame:
    """Attach the follow-ups just scheduled, as the ledger's reader would: a list per
    decision, earliest first (`planned` is one row per follow-up)."""
    lists = planned.group_by("customer_id").agg(
        followups=pl.struct("due_at", "kind").sort_by("due_at")
    )
    return fresh.join(lists, on="customer_id", how="left", maintain_order="left").with_columns(
        pl.col("followups").fill_null(pl.lit([], dtype=FOLLOWUP_LIST))
    )


def _plan(
    fresh: pl.DataFrame,
    customers: pl.DataFrame,
    busy: pl.DataFrame,
    now: datetime,
    policy: ContactPolicy,
) -> pl.DataFrame:
    """Follow-ups for customers apologized to now, who consented and have none pending.

    Check-in and feedback about one incident make up the marketing-contact allowance of the
    window; a customer with follow-ups from another incident in the window (`busy`) gets
    none. One row per follow-up (`PLANNED_SCHEMA`), as `Tx.record` takes them.
    """
    none = pl.DataFrame(schema=PLANNED_SCHEMA)
    if policy.marketing_contacts_per_window == 0:
        return none
    eligible = (
        fresh.select("customer_id", "channel", "message_kind")
        .filter((pl.col("message_kind") == "apology") & pl.col("channel").is_not_null())
        .select("customer_id")
        .join(customers.select("customer_id", "timezone", "consent_marketing"), on="customer_id")
        .filter("consent_marketing")
        .join(busy, on="customer_id", how="anti")
    )
    if eligible.is_empty():
        return none
    due = schedule_followups(eligible.select("customer_id", "timezone"), now, policy)
    if policy.marketing_contacts_per_window >= 2:  # the policy plans two: both fit
        return due
    same = pl.col("customer_id")  # sorted by customer, then due time: keep each one's first
    return due.filter(same.shift(1).ne_missing(same))
