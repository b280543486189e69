"""Incidents and their escalation steps.

An incident evolves (the delay grows); each update may cross a new escalation step. Steps
are what the ledger counts: a customer is decided at most once per (incident, step).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Minutes = Annotated[int, msgspec.Meta(ge=0, le=7 * 24 * 60)]
IncidentId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[\w.:-]+$")]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


Iata = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$", description="IATA airport code")]


class FlightFacts(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What happened to a flight, as the service desk knows it now.

    `delay_minutes` drives escalation (the delay the passenger is living through).
    Entitlements need the route, the carrier's country and the arrival delay; without
    them the decision says entitlements were not assessed.
    """

    delay_minutes: Minutes
    flight: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    origin: Iata | None = None
    destination: Iata | None = None
    arrival_delay_minutes: Minutes | None = None
    carrier_country: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")] | None = None
    carrier_size: Literal["large", "small"] = "large"
    cause: Literal["controllable", "uncontrollable", "safety"] = "controllable"
    overnight: bool = False


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    """A service failure: id chosen by the caller, kind, when, and the current facts."""

    incident_id: IncidentId
    kind: str
    occurred_at: AwareDatetime
    facts: FlightFacts


class EscalationPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Below `notice_minutes` nothing is sent; then one step per `step_minutes` of delay."""

    notice_minutes: Annotated[int, msgspec.Meta(ge=0)] = 30
    step_minutes: Annotated[int, msgspec.Meta(gt=0)] = 45

    def step(self, delay_minutes: int) -> int:
        """Step 0 is "not noticed"; 30 min is step 1, 45 step 2, 90 step 3, 135 step 4…"""
        if delay_minutes < self.notice_minutes:
            return 0
        return delay_minutes // self.step_minutes + 1


class FactsError(ValueError):
    """Facts that are well-formed but unusable (an unknown airport); names the field."""


def entitlements(incident: Incident) -> tuple[list[dict[str, Any]], str | None]:
    """What the law owes for this incident's facts, and a note when it cannot be assessed.

    Entitlements depend on the incident, not the customer: computed once per update.
    """
    from offers.entitlements import FlightContext, entitlements_for

    f = incident.facts
    if f.origin is None or f.destination is None or f.carrier_country is None:
        return [], "entitlements not assessed: facts need origin, destination and carrier_country"
    ctx = FlightContext(
        origin=f.origin,
        destination=f.destination,
        departure_delay_minutes=f.delay_minutes,
        arrival_delay_minutes=f.delay_minutes
        if f.arrival_delay_minutes is None
        else f.arrival_delay_minutes,
        carrier_country=f.carrier_country,
        cause=f.cause,
        carrier_size=f.carrier_size,
        overnight=f.overnight,
    )
    try:
        found = entitlements_for(ctx)
    except ValueError as exc:
        raise FactsError(f"facts.{exc}") from exc
    if not found:
        return [], "no legal entitlement for this route and delay"
    return [msgspec.structs.asdict(e) for e in found], None
