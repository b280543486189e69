"""What a preview's situation is: everything a decision depends on but who the customer is.

`offers.preview` remembers decisions by situation. Working a situation out from scratch
reads the customer's profile row, searches the columns the engine reads and hashes the id
for the holdout and explore draws, which cost more than the rest of a remembered preview;
so what it reads of each customer is kept per customer, and what an incident's facts fix
per incident, for as long as the table, the profile book, the escalation policy and the
entitlements they were read with are the live ones.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import msgspec

from offers.catalog import OfferTable
from offers.catalog.matching import candidates
from offers.decide import Learning, StepContext, profile_columns
from offers.flow import Parts, UnknownCustomers
from offers.incidents import Incident
from segmentation.ids import unit_value

__all__ = ["Known", "SituationKeys", "Who"]


class SituationKeys:
    """The parts of situations read once: per customer (at most `size`) and per incident."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._sources: tuple[object, ...] = ()
        self._whos: dict[str, Who] = {}  # ~0.5 KB each
        self._incidents: dict[bytes, Known] = {}  # by the incident as JSON
        self._column_sets: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._ruled: frozenset[str] = frozenset()
        self._limited: frozenset[str] = frozenset()
        self._alternatives = False
        self._most = 1  # the most candidates a rule offers

    def customer(
        self, parts: Parts, table: OfferTable, incident: Incident, customer_id: str
    ) -> tuple[Known, Who]:
        """What the incident's facts fix, and what the situation reads of the customer;
        `UnknownCustomers` for an id without a profile."""
        self._know_for(table, parts)
        facts = msgspec.json.encode(incident)
        known = self._incidents.get(facts)
        who = self._whos.get(customer_id)
        if who is None or known is None or who.columns is not known.columns:
            profile = _profile(parts, customer_id)
            if profile is None:
                raise UnknownCustomers([customer_id])
            if known is None:
                known = self._incident(parts, table, incident, facts, profile)
            who = self._who(customer_id, profile, known.columns)
        return known, who

    def _know_for(self, table: OfferTable, parts: Parts) -> None:
        """Forget customers and incidents read with another table, profile book, escalation
        policy or entitlements (each by identity)."""
        profiles = parts.profile or parts.select_profiles
        book = getattr(profiles, "__self__", profiles)
        sources = (table, book, parts.policy, parts.entitlements)
        if self._sources == sources:  # the same objects (or equal values): still valid
            return
        with self._lock:
            self._whos.clear()
            self._incidents.clear()
            self._column_sets.clear()
            self._ruled = frozenset(c for r in table.rules for c in r.when)
            self._limited = frozenset(r.perk for r in table.rules if r.per_customer_limit)
            self._alternatives = any(r.alternatives for r in table.rules)
            self._most = max((len(candidates(r)) for r in table.rules), default=1)
            self._sources = sources

    def _incident(
        self,
        parts: Parts,
        table: OfferTable,
        incident: Incident,
        facts: bytes,
        profile: dict[str, Any],
    ) -> Known:
        """What these facts fix for every customer: the step, what the law owes, the
        profile columns the engine reads (entitlements raise on facts they cannot use)."""
        step = parts.escalation(incident.kind).step(incident.facts.delay_minutes)
        owed = parts.entitlements(incident) if step else ([], None)
        columns = tuple(profile_columns(table, list(profile), incident))
        with self._lock:
            columns = self._column_sets.setdefault(columns, columns)
            known = self._incidents[facts] = Known(facts, step, owed, columns)
            if len(self._incidents) > _INCIDENTS:
                del self._incidents[next(iter(self._incidents))]
        return known

    def _who(self, customer_id: str, profile: dict[str, Any], columns: tuple[str, ...]) -> Who:
        """The customer as the situation reads them: the columns' values but for id and
        name (the channel stands in for the two columns that only choose it)."""
        values: list[Any] = []
        for column in columns:
            if column in ("customer_id", "first_name"):
                continue
            if column in _CHANNEL_COLUMNS and column not in self._ruled:
                continue
            value = profile[column]
            values.append(tuple(value) if isinstance(value, list) else value)
        who = Who(columns, tuple(values), _channel(profile), profile.get("first_name"))
        with self._lock:
            self._whos[customer_id] = who
            if len(self._whos) > self.size:
                del self._whos[next(iter(self._whos))]
        return who

    def key(
        self,
        ctx: StepContext,
        known: Known,
        who: Who,
        customer_id: str,
        history: list[tuple[Any, ...]],
        recent: list[tuple[Any, ...]],
    ) -> tuple[Any, ...]:
        """Everything the decision depends on except who the customer is."""
        incident_id = ctx.incident.incident_id
        draws = who.draws
        if draws[0] != incident_id:  # the holdout's and the explorers' draws, once per incident
            draws = who.draws = (
                incident_id,
                unit_value(customer_id, incident_id),
                unit_value(customer_id, f"{incident_id}#explore"),
            )
        share = ctx.policy.holdout_share
        learning = ctx.learning
        exploring = learning is not None and self._alternatives and draws[2] < learning.config.share
        return (
            known.facts,
            ctx.step,
            ctx.now.date(),
            ctx.budget_left,
            tuple(sorted(ctx.stock_left.items())),
            known.columns,
            who.values,
            who.channel,
            tuple(sorted((r[1:] for r in history), key=repr)),
            _recent(recent, self._limited, ctx.policy.max_perks),
            share > 0 and draws[1] < share,
            self._picks(customer_id, incident_id, ctx.step, learning) if exploring else None,
        )

    def _picks(
        self, customer_id: str, incident_id: str, step: int, learning: Learning | None
    ) -> tuple[int, ...]:
        """An explorer's pick among k candidates, for every k a rule offers (at most as many
        after value bands): explorers who would pick alike share a situation. The draw is
        the engine's (`offers.decide.choice.choose`)."""
        assert learning is not None
        u = unit_value(customer_id, f"{incident_id}#{step}#draw#{learning.salt}")
        return tuple(int(u * k) for k in range(2, self._most + 1))


@dataclass(frozen=True)
class Known:
    """What an incident's facts fix for every customer (`SituationKeys._incident`)."""

    facts: bytes  # the incident as JSON
    step: int
    owed: tuple[list[dict[str, Any]], str | None]
    columns: tuple[str, ...]


@dataclass
class Who:
    """What a situation reads of one customer's profile (`SituationKeys._who`)."""

    columns: tuple[str, ...]
    values: tuple[Any, ...]
    channel: str | None
    first_name: str | None
    #: (incident id, holdout draw, explore draw) of the last incident asked about
    draws: tuple[str | None, float, float] = (None, 1.0, 1.0)


#: How many incidents' facts `SituationKeys` keeps what they fix of (`Known`, ~1 KB each).
_INCIDENTS = 4096


def _profile(parts: Parts, customer_id: str) -> dict[str, Any] | None:
    if parts.profile is not None:
        return parts.profile(customer_id)
    found = parts.select_profiles([customer_id])
    return found.to_dicts()[0] if found.height else None


def _recent(recent: list[tuple[Any, ...]], limited: frozenset[str], max_perks: int) -> Hashable:
    """What the engine reads of the customer's other incidents in the window: whether
    there are any (the second-failure flag), whether as many as the cap carried a perk
    (the reasons' counts of both are spliced in per customer like the name, so everyone
    past the cap shares a situation), and for each perk a rule limits per customer, in
    how many. Never which incidents, nor anything else: every new incident would make
    its customers situations of their own (`limited`: the perks a rule limits per customer)."""
    per_perk: dict[str, set[str]] = {}
    for _, incident_id, perk_id in recent:
        if perk_id is not None:
            per_perk.setdefault(perk_id, set()).add(incident_id)
    with_perk = len(set().union(*per_perk.values())) if per_perk else 0
    return (
        bool(recent),
        with_perk >= max_perks,
        tuple(sorted((perk, len(ids)) for perk, ids in per_perk.items() if perk in limited)),
    )


#: Profile columns the engine reads only to choose the channel (`offers.decide.columns._channel`).
_CHANNEL_COLUMNS = ("preferred_channel", "allowed_channels")


def _channel(profile: dict[str, Any]) -> str | None:
    """The channel the engine picks: the preferred one if allowed, else the first allowed."""
    allowed = profile.get("allowed_channels") or []
    preferred = profile.get("preferred_channel")
    return preferred if preferred in allowed else (allowed[0] if allowed else None)
