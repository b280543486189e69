"""One incident update, from facts to recorded decisions.

This is the whole flow of DESIGN.md for an update: compute the step, find who is affected,
decide for those not yet decided at this step, record exactly once, and answer with what
the ledger holds, so repeated and concurrent calls all get the same decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from offers.engine import decide
from offers.incidents import EscalationPolicy, Incident
from offers.ledger import DECISION_SCHEMA, Ledger
from offers.messages import MessageBook
from offers.tables import OfferTable


class UnknownCustomers(ValueError):
    """Customer ids with no profile; nothing was recorded."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        shown = ", ".join(repr(i) for i in ids[:10])
        more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
        super().__init__(f"unknown customer ids: {shown}{more}")


class UnknownIncident(LookupError):
    pass


@dataclass(frozen=True)
class Outcome:
    incident_id: str
    step: int
    delay_minutes: int
    issued: int
    decisions: pl.DataFrame
    dry_run: bool = False

    @property
    def cost(self) -> float:
        return float(self.decisions["perk_cost"].fill_null(0.0).sum())


@dataclass(frozen=True)
class Parts:
    """What a flow needs: profiles by id, the ledger, the live table, messages, policy."""

    select_profiles: Callable[[Sequence[str]], pl.DataFrame]
    unknown_profiles: Callable[[Sequence[str]], list[str]]
    ledger: Ledger
    table: Callable[[], OfferTable]
    book: MessageBook
    policy: EscalationPolicy


def apply_update(
    parts: Parts,
    incident: Incident,
    customer_ids: Sequence[str],
    now: datetime,
    *,
    dry_run: bool = False,
    must_exist: bool = False,
) -> Outcome:
    """Decide the incident's current step for everyone affected who lacks a decision."""
    ids = list(dict.fromkeys(customer_ids))
    unknown = parts.unknown_profiles(ids)
    if unknown:
        raise UnknownCustomers(unknown)
    if must_exist and parts.ledger.incident(incident.incident_id) is None:
        raise UnknownIncident(incident.incident_id)
    step = parts.policy.step(incident.facts.delay_minutes)
    ledger = parts.ledger
    if dry_run:
        stored = ledger.incident(incident.incident_id) is not None
        known = (
            ledger.decisions(incident.incident_id)["customer_id"].unique().to_list()
            if stored
            else []
        )
        affected = list(dict.fromkeys([*known, *ids]))
    else:
        affected = ledger.open_incident(incident, step, ids, now)
    empty = pl.DataFrame(schema=DECISION_SCHEMA)
    if step == 0:
        return Outcome(incident.incident_id, 0, incident.facts.delay_minutes, 0, empty, dry_run)
    fresh = decide(
        parts.select_profiles(affected),
        ledger.history(incident.incident_id),
        incident,
        step,
        parts.table(),
        parts.book,
        now,
    )
    if dry_run:
        stored_now = ledger.decisions(incident.incident_id, step=step)
        both = pl.concat([stored_now, fresh.cast(DECISION_SCHEMA)]).sort("customer_id")  # type: ignore[arg-type]
        return Outcome(incident.incident_id, step, incident.facts.delay_minutes, 0, both, True)
    issued = ledger.record(fresh, now)
    return Outcome(
        incident.incident_id,
        step,
        incident.facts.delay_minutes,
        issued,
        ledger.decisions(incident.incident_id, step=step),
    )
