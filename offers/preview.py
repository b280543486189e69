"""What one customer would get for an incident's facts now, recorded nowhere, fast.

A service agent previews customer after customer while the desk's systems keep calling,
so a preview has to cost about what reading the customer's rows costs. Deciding a one-row
frame with the incident engine costs ~20 ms, nearly all of it fixed overhead, and the
decision depends on few things besides the customer's name: the step's context (facts,
step, day, budget and stock left, entitlements, the live table, messages, learned
posteriors, policies), the profile columns the engine and the rules read, what the
customer holds from this incident, their other incidents in the contact window, and
whether they fall in the holdout (and, if they fall in the exploring share, which of a
rule's perks their draw picks). Together those are the
customer's *situation*. The engine decides the first customer of each situation and
hands back the text's shell (marks where the name and the code go, `offers.messages.rendering`);
the next customer in the same situation gets that decision with their own id and name
and a new perk code spliced in. The answer is the engine's answer either way, which
tests/test_preview.py checks customer by customer.

New situations are decided in batches: while the engine works, the new situations that
arrive for the same step wait for it together and are then decided in one call, which
costs about what one customer costs. Budget and stock are the only things one customer's
decision takes from another's, so a batch is decided without them and any customer whom
they would stop on their own is decided alone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from dataclasses import replace as with_changes
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from offers.catalog import OfferTable
from offers.decide import StepContext, decide
from offers.flow import Parts, step_context
from offers.incidents import Incident
from offers.ledger import DECISION_SCHEMA
from offers.preview_situation import SituationKeys
from offers.record import (
    CODE_MARK,
    HISTORY_SCHEMA,
    LEDGER_ONLY,
    NAME_MARK,
    RECENT_SCHEMA,
    perk_code,
)

#: Where the reasons say how many other incidents flagged the customer for a human.
OTHERS_MARK = "\ue002"
#: Where the reasons say in how many other incidents a capped customer got perks.
CAPPED_MARK = "\ue004"


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
        self.engine_calls = 0
        self._open: dict[Hashable, _Batch] = {}  # gathering, by step
        self._deciding: dict[Hashable, _Batch] = {}  # with the engine, by situation
        self._engine = threading.Lock()
        self._situations = SituationKeys(size)

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
        if isinstance(found, Preview):
            return found.row()
        return found() if callable(found) else found

    def look(
        self,
        parts: Parts,
        incident: Incident,
        customer_id: str,
        now: datetime,
        budget: float | None = None,
    ) -> Preview | Callable[[], dict[str, Any]] | None:
        """`__call__` where the answer is cheap (a remembered situation: one indexed read
        and a lookup, the answer as a `Preview`); otherwise a function that asks the engine
        or the ledger, for the caller to run where slow work belongs (the HTTP layer: a
        worker thread)."""
        table = parts.table(incident.kind)
        known, who = self._situations.customer(parts, table, incident, customer_id)
        step = known.step
        if step == 0:
            return None
        owed = known.owed
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
        ctx = step_context(parts, ledger, table, incident, step, now, owed, budget, spent)
        self._keep_for(table, parts, ctx)
        key = self._situations.key(ctx, known, who, customer_id, history, recent)
        with self._lock:
            shell = self._memo.get(key)
            if shell is not None:
                self._memo.move_to_end(key)
                self.hits += 1
        first_name = who.first_name
        others, perks = _other_incidents(recent)
        if shell is not None:
            code = perk_code() if shell["perk_code"] is not None else None
            return Preview(shell, customer_id, first_name, others, code, perks)

        asked = _Asked(customer_id, history, recent)

        def decided() -> dict[str, Any]:
            if "first_name" in {c for r in table.rules for c in r.when}:  # personal
                with self._engine:
                    shell = _shells(parts, ctx, table, {key: asked})[key]
                self._count(1)
            else:
                step_key = (key[:5], id(table), id(ctx.learning))
                shell = self._batched(
                    step_key, key, asked, lambda wanted: _shells(parts, ctx, table, wanted)
                )
            code = perk_code() if shell["perk_code"] is not None else None
            return _personal(shell, customer_id, first_name, others, code, perks)

        return decided

    def _batched(
        self,
        step_key: Hashable,
        key: Hashable,
        asked: _Asked,
        make: Callable[[dict[Hashable, _Asked]], dict[Hashable, dict[str, Any]]],
    ) -> dict[str, Any]:
        """The situation's shell, decided in one engine call with every other new situation
        of the same step asked meanwhile (a new incident's first previews arrive together);
        a situation already on its way is waited for, not decided again."""
        with self._lock:
            shell = self._memo.get(key)
            if shell is not None:
                return shell
            batch = self._deciding.get(key) or self._open.get(step_key)
            leader = batch is None
            if batch is None:
                batch = self._open[step_key] = _Batch()
            if key not in batch.wanted and any(
                a.customer_id == asked.customer_id for a in batch.wanted.values()
            ):
                batch, leader = _Batch(), True  # one row per customer in a batch
            batch.wanted.setdefault(key, asked)
        if not leader:
            batch.done.wait()
            if batch.error is not None:
                raise batch.error
            return batch.shells[key]
        try:
            with self._engine:  # one at a time: the engine's own threads use every core
                with self._lock:  # closed: who asks from now on starts the next batch
                    if self._open.get(step_key) is batch:
                        del self._open[step_key]
                    self._deciding.update(dict.fromkeys(batch.wanted, batch))
                batch.shells = make(batch.wanted)
            self._remember(batch.shells)
        except BaseException as error:
            batch.error = error
            raise
        finally:
            with self._lock:
                for wanted in batch.wanted:
                    if self._deciding.get(wanted) is batch:
                        del self._deciding[wanted]
            batch.done.set()
        return batch.shells[key]

    def _remember(self, shells: dict[Hashable, dict[str, Any]]) -> None:
        with self._lock:
            self.engine_calls += 1
            self.misses += len(shells)
            self._memo.update(shells)
            while len(self._memo) > self.size:
                self._memo.popitem(last=False)

    def _count(self, misses: int) -> None:
        with self._lock:
            self.engine_calls += 1
            self.misses += misses

    def _keep_for(self, table: OfferTable, parts: Parts, ctx: StepContext) -> None:
        """Forget every situation when a part they were decided with is replaced (the
        table, messages and posteriors by identity, the policies by value)."""
        old = self._owners
        if (
            old
            and old[0] is table
            and old[1] is parts.book
            and old[2] is ctx.learning
            and (old[3] is parts.contact or old[3] == parts.contact)
            and (old[4] is parts.value or old[4] == parts.value)
        ):
            return
        with self._lock:
            self._memo.clear()
            self._owners = (table, parts.book, ctx.learning, parts.contact, parts.value)


@dataclass(frozen=True)
class Preview:
    """A remembered situation's decision for one customer: the engine's shell (the same
    object for everyone in the situation) and what is theirs: id, first name, how many
    other incidents they had, their new perk code when a perk is given, and in how many
    other incidents they got perks (said only when that reached the contact cap)."""

    shell: dict[str, Any]
    customer_id: str
    first_name: str | None
    others: int
    code: str | None
    perks: int

    def row(self) -> dict[str, Any]:
        """The decision as a flat row, as `Previews.__call__` gives it."""
        return _personal(
            self.shell, self.customer_id, self.first_name, self.others, self.code, self.perks
        )


@dataclass(frozen=True)
class _Asked:
    """A customer in a new situation: who, and what they hold (this incident, others)."""

    customer_id: str
    history: list[tuple[Any, ...]]
    recent: list[tuple[Any, ...]]


@dataclass
class _Batch:
    """New situations of one step, decided by the engine in one call."""

    wanted: dict[Hashable, _Asked] = field(default_factory=dict)
    shells: dict[Hashable, dict[str, Any]] = field(default_factory=dict)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def _shells(
    parts: Parts, ctx: StepContext, table: OfferTable, wanted: dict[Hashable, _Asked]
) -> dict[Hashable, dict[str, Any]]:
    """The engine's decisions for these customers, placeholders for name and code.

    Decided together without the budget and stock left, which are the only things one
    customer's decision takes from another's; a customer whom either would stop on their
    own (their perk costs more than the budget left, or none is left in stock) is decided
    again alone with them.
    """
    free = with_changes(ctx, budget_left=None, stock_left={})
    rows = _decide(parts, free, table, list(wanted.values()))
    shells = {}
    for key, asked in wanted.items():
        row = rows[asked.customer_id]
        cost, perk = row["charged_cost"], row["perk_id"]
        if (ctx.budget_left is not None and cost is not None and cost > ctx.budget_left) or (
            perk in ctx.stock_left and ctx.stock_left[perk] < 1
        ):
            row = _decide(parts, ctx, table, [asked])[asked.customer_id]
        shells[key] = row
    return shells


def _decide(
    parts: Parts, ctx: StepContext, table: OfferTable, asked: list[_Asked]
) -> dict[str, dict[str, Any]]:
    customers = parts.select_profiles([a.customer_id for a in asked])
    fresh = decide(
        customers,
        pl.DataFrame([h for a in asked for h in a.history], schema=HISTORY_SCHEMA, orient="row"),
        pl.DataFrame([r for a in asked for r in a.recent], schema=RECENT_SCHEMA, orient="row"),
        ctx,
        table,
        parts.book,
    )
    counts = {a.customer_id: _other_incidents(a.recent) for a in asked}
    rows = {}
    shells = fresh["text_shell"].cast(pl.String)
    fresh = fresh.drop(LEDGER_ONLY).with_columns(text=shells)  # the shell: no one's name
    for row in fresh.cast(DECISION_SCHEMA).to_dicts():  # type: ignore[arg-type]
        others, perks = counts[row["customer_id"]]
        reasons = row["reasons"].replace(others_wording(others), OTHERS_MARK)
        row["reasons"] = reasons.replace(capped_wording(perks), CAPPED_MARK)
        row["followups"] = []
        rows[row["customer_id"]] = row
    return rows


def _other_incidents(recent: list[tuple[Any, ...]]) -> tuple[int, int]:
    """How many other incidents the customer had in the window, and in how many of them
    they got a perk (rows are per decision: incident id, perk id)."""
    if not recent:
        return 0, 0
    return len({r[1] for r in recent}), len({r[1] for r in recent if r[2] is not None})


def others_wording(count: int) -> str:
    """How the engine's reasons word the count of other incidents behind a human flag."""
    return f"({count} other incidents)"


def capped_wording(count: int) -> str:
    """How the engine's reasons word the count of other incidents with a perk at the cap."""
    return f"contact cap: perks in {count} other incidents"


def _personal(
    shell: dict[str, Any],
    customer_id: str,
    first_name: str | None,
    others: int,
    code: str | None,
    perks: int,
) -> dict[str, Any]:
    """`shell` for this customer: their id, name, counts of other incidents (with a perk),
    and their perk code if a perk is given."""
    row = dict(shell, customer_id=customer_id, followups=[])
    reasons = row["reasons"].replace(OTHERS_MARK, others_wording(others))
    row["reasons"] = reasons.replace(CAPPED_MARK, capped_wording(perks))
    row["perk_code"] = code
    if row["text"] is not None:  # code first, then the name: a name is never scanned
        text: str = row["text"].replace(CODE_MARK, row["perk_code"] or "")
        row["text"] = text.replace(NAME_MARK, first_name or "")
    return row
