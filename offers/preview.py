"""What one customer would get for an incident's facts now, recorded nowhere, fast.

A service agent previews customer after customer while the desk's systems keep calling,
so a preview has to cost about what reading the customer's rows costs. Deciding a one-row
frame with the incident engine costs ~20 ms, nearly all of it fixed overhead, and the
decision depends on few things besides the customer's name: the step's context (facts,
step, day, budget and stock left, entitlements, the live table, messages, learned
posteriors, policies), the profile columns the engine and the rules read, what the
customer holds from this incident, their other incidents in the contact window, and
whether they fall in the holdout or the exploring share. Together those are the
customer's *situation*. The engine decides the first customer of each situation (with a
placeholder for the name); the next customer in the same situation gets that decision
with their own id and name and a new perk code spliced in. The answer is the engine's
answer either way, which tests/test_preview.py checks customer by customer.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from typing import Any

import msgspec
import polars as pl

from offers.engine import HISTORY_SCHEMA, StepContext, decide, perk_code, profile_columns
from offers.flow import Parts, UnknownCustomers, step_context
from offers.incidents import Incident
from offers.ledger import DECISION_SCHEMA
from offers.policy import RECENT_SCHEMA
from offers.tables import OfferTable
from segmentation.ids import unit_value

#: Placeholders the engine writes where the name and the perk code go; private-use
#: characters, so no template or name contains them.
NAME_MARK = "\ue000"
CODE_MARK = "\ue001"


class Previews:
    """Preview decisions remembered by situation, for as long as the live parts last.

    Any change of table, messages, learned posteriors or policies starts afresh; facts,
    budget and stock left are part of each situation, so an update of the incident or a
    perk handed out elsewhere is never answered from an older decision.
    """

    def __init__(self, size: int = 16_384) -> None:  # ~2 KB each: ~32 MB per worker at most
        self.size = size
        self.hits = 0
        self.misses = 0
        self._memo: OrderedDict[Hashable, dict[str, Any]] = OrderedDict()
        self._owners: tuple[object, ...] = ()
        self._lock = threading.Lock()
        self._running: dict[Hashable, threading.Event] = {}
        self._engine = threading.BoundedSemaphore(2)

    def __call__(
        self,
        parts: Parts,
        incident: Incident,
        customer_id: str,
        now: datetime,
        budget: float | None = None,
    ) -> dict[str, Any] | None:
        """The decision as a flat row (the ledger's columns, `followups` empty), or None
        below the noticeability threshold. A customer already decided at this step (or a
        later one) sees the stored decision.

        The customer is decided alone: the budget left is theirs to take, where a real
        update shares it by value per cost.
        """
        found = self.look(parts, incident, customer_id, now, budget)
        return found() if callable(found) else found

    def look(
        self,
        parts: Parts,
        incident: Incident,
        customer_id: str,
        now: datetime,
        budget: float | None = None,
    ) -> dict[str, Any] | Callable[[], dict[str, Any]] | None:
        """`__call__` where the answer is cheap (a remembered situation: one indexed read
        and a lookup); otherwise a function that asks the engine or the ledger, for the
        caller to run where slow work belongs (the HTTP layer: a worker thread)."""
        profile = _profile(parts, customer_id)
        if profile is None:
            raise UnknownCustomers([customer_id])
        step = parts.escalation(incident.kind).step(incident.facts.delay_minutes)
        if step == 0:
            return None
        owed = parts.entitlements(incident)
        since = now - timedelta(days=parts.contact.window_days)
        incident_id, ledger = incident.incident_id, parts.ledger
        (exists, stored_budget), history, recent = ledger.customer_past(
            incident_id, customer_id, since
        )
        budget = stored_budget if budget is None else budget
        spent = ledger.spent(incident_id) if exists and budget is not None else 0.0
        if any(row[1] >= step for row in history):
            return lambda: (
                ledger.decisions(incident_id, customer_id=customer_id).tail(1).to_dicts()[0]
            )
        table = parts.table()
        ctx = step_context(parts, ledger, table, incident, step, now, owed, budget, spent)
        self._keep_for(table, parts, ctx)
        key = _situation(ctx, table, profile, history, recent)
        with self._lock:
            shell = self._memo.get(key)
            if shell is not None:
                self._memo.move_to_end(key)
                self.hits += 1
        first_name = profile.get("first_name")
        if shell is not None:
            return _personal(shell, customer_id, first_name)

        def decided() -> dict[str, Any]:
            if "first_name" in {c for r in table.rules for c in r.when}:
                shell = _shell(parts, ctx, table, customer_id, history, recent)  # personal
            else:
                shell = self._once(
                    key, lambda: _shell(parts, ctx, table, customer_id, history, recent)
                )
            return _personal(shell, customer_id, first_name)

        return decided

    def _once(self, key: Hashable, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The situation's shell, made by the engine once however many ask at the same time
        (a new incident's first previews arrive together); the others wait for it."""
        with self._lock:
            running = self._running.get(key)
            if running is None:
                running = self._running[key] = threading.Event()
                leader = True
            else:
                leader = False
        if not leader:
            running.wait()
            with self._lock:
                shell = self._memo.get(key)
            if shell is not None:
                return shell
        try:
            with self._engine:  # a few at a time: the engine's own threads use every core
                shell = make()
            self._remember(key, shell)
        finally:
            if leader:
                with self._lock:
                    self._running.pop(key, None)
                running.set()
        return shell

    def _remember(self, key: Hashable, shell: dict[str, Any]) -> None:
        with self._lock:
            self.misses += 1
            self._memo[key] = shell
            while len(self._memo) > self.size:
                self._memo.popitem(last=False)

    def _keep_for(self, table: OfferTable, parts: Parts, ctx: StepContext) -> None:
        """Forget every situation when a part they were decided with is replaced (the
        table, messages and posteriors by identity, the policies by value)."""
        owners = (table, parts.book, ctx.learning)
        with self._lock:
            same = len(self._owners) == 5 and all(
                a is b for a, b in zip(owners, self._owners[:3], strict=True)
            )
            if not same or self._owners[3:] != (parts.contact, parts.value):
                self._memo.clear()
                self._owners = (*owners, parts.contact, parts.value)


def _profile(parts: Parts, customer_id: str) -> dict[str, Any] | None:
    if parts.profile is not None:
        return parts.profile(customer_id)
    found = parts.select_profiles([customer_id])
    return found.to_dicts()[0] if found.height else None


def _situation(
    ctx: StepContext,
    table: OfferTable,
    profile: dict[str, Any],
    history: list[tuple[Any, ...]],
    recent: list[tuple[Any, ...]],
) -> Hashable:
    """Everything the decision depends on except who the customer is."""
    incident, customer_id = ctx.incident, profile["customer_id"]
    columns = profile_columns(table, list(profile), incident)
    ruled = {c for r in table.rules for c in r.when}
    values: list[Any] = []
    for column in columns:
        if column in ("customer_id", "first_name"):
            continue
        if column in _CHANNEL_COLUMNS and column not in ruled:
            continue  # they only choose the channel, which stands in for both
        value = profile[column]
        values.append(tuple(value) if isinstance(value, list) else value)
    share = ctx.policy.holdout_share
    learning = ctx.learning
    exploring = (
        learning is not None
        and not learning.posteriors.is_empty()  # no evidence yet: nothing to explore
        and unit_value(customer_id, f"{incident.incident_id}#explore") < learning.config.share
    )
    return (
        msgspec.json.encode(incident),
        ctx.step,
        ctx.now.date(),
        ctx.budget_left,
        tuple(sorted(ctx.stock_left.items())),
        tuple(columns),
        tuple(values),
        _channel(profile),
        tuple(sorted((r[1:] for r in history), key=repr)),
        _recent(recent),
        share > 0 and unit_value(customer_id, incident.incident_id) < share,
        exploring,
    )


def _recent(recent: list[tuple[Any, ...]]) -> Hashable:
    """What the engine reads of the customer's other incidents in the window: how many,
    how many carried a perk, and per perk in how many (never which: incident ids would
    make every customer a situation of their own)."""
    per_perk: dict[str, set[str]] = {}
    for _, incident_id, perk_id in recent:
        if perk_id is not None:
            per_perk.setdefault(perk_id, set()).add(incident_id)
    with_perk = set().union(*per_perk.values()) if per_perk else set()
    return (
        len({r[1] for r in recent}),
        len(with_perk),
        tuple(sorted((perk, len(ids)) for perk, ids in per_perk.items())),
    )


#: Profile columns the engine reads only to choose the channel (`engine._channel`).
_CHANNEL_COLUMNS = ("preferred_channel", "allowed_channels")


def _channel(profile: dict[str, Any]) -> str | None:
    """The channel the engine picks: the preferred one if allowed, else the first allowed."""
    allowed = profile.get("allowed_channels") or []
    preferred = profile.get("preferred_channel")
    return preferred if preferred in allowed else (allowed[0] if allowed else None)


def _shell(
    parts: Parts,
    ctx: StepContext,
    table: OfferTable,
    customer_id: str,
    history: list[tuple[Any, ...]],
    recent: list[tuple[Any, ...]],
) -> dict[str, Any]:
    """The engine's decision for this customer with placeholders for name and code."""
    customers = parts.select_profiles([customer_id])
    if "first_name" in customers.columns:
        customers = customers.with_columns(first_name=pl.lit(NAME_MARK, pl.String))
    fresh = decide(
        customers,
        pl.DataFrame(history, schema=HISTORY_SCHEMA, orient="row"),
        pl.DataFrame(recent, schema=RECENT_SCHEMA, orient="row"),
        ctx,
        table,
        parts.book,
    )
    row = fresh.cast(DECISION_SCHEMA).drop("reason_id").to_dicts()[0]  # type: ignore[arg-type]
    if row["perk_code"] is not None and row["text"] is not None:
        row["text"] = row["text"].replace(row["perk_code"], CODE_MARK)
    row["followups"] = []
    return row


def _personal(shell: dict[str, Any], customer_id: str, first_name: str | None) -> dict[str, Any]:
    """`shell` for this customer: their id and name, and a new perk code if a perk is given."""
    row = dict(shell, customer_id=customer_id, followups=[])
    if row["perk_code"] is not None:
        row["perk_code"] = perk_code()
    if row["text"] is not None:
        text: str = row["text"].replace(NAME_MARK, first_name or "")
        row["text"] = text.replace(CODE_MARK, row["perk_code"] or "")
    return row
