"""Incidents and their escalation steps.

An incident evolves (the delay grows); each update may cross a new escalation step. Steps
are what the ledger counts: a customer is decided at most once per (incident, step).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Minutes = Annotated[int, msgspec.Meta(ge=0, le=7 * 24 * 60)]
IncidentId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[\w.:-]+(?!\n)$")]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


Iata = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}(?!\n)$", description="IATA airport code")]


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
    carrier_country: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}(?!\n)$")] | None = None
    carrier_size: Literal["large", "small"] = "large"
    cause: Literal["controllable", "uncontrollable", "safety"] = "controllable"
    overnight: bool = False


class CancellationFacts(FlightFacts, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A cancelled flight: `delay_minutes` (and `arrival_delay_minutes`) is how late the
    re-routing offered arrives; the notice facts decide whether compensation is owed.

    `notice_days`: whole days before the scheduled departure the customer was told (13 days
    23 h is 13); unknown counts as told on the day. `reroute_departs_early_minutes`: how long
    before the scheduled departure the re-routing offered leaves (0 when at or after it);
    unknown, or no re-routing offered, never earns the carrier a notice exemption.
    """

    notice_days: Annotated[int, msgspec.Meta(ge=0, le=366)] | None = None
    reroute_departs_early_minutes: Minutes | None = None


class ServiceFacts(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What went wrong outside a flight: a bag, a service, an order.

    `delay_minutes` is how long the customer has been let down so far (a bag missing for a
    day is 1440); `reference` names the bag tag, service or order the messages speak of.
    """

    delay_minutes: Minutes
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    origin: Iata | None = None


FLIGHT_KINDS = ("flight_delay", "cancellation", "missed_connection")
SERVICE_KINDS = ("lost_baggage", "service_outage", "order_late")
IncidentKind = Literal[
    "flight_delay",
    "cancellation",
    "missed_connection",
    "lost_baggage",
    "service_outage",
    "order_late",
]
Facts = FlightFacts | ServiceFacts


def facts_type(kind: str) -> type[FlightFacts] | type[ServiceFacts]:
    if kind == "cancellation":
        return CancellationFacts
    return FlightFacts if kind in FLIGHT_KINDS else ServiceFacts


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    """A service failure: id chosen by the caller, kind, when, and the current facts."""

    incident_id: IncidentId
    kind: str
    occurred_at: AwareDatetime
    facts: Facts


#: Default escalation per incident kind: when it is noticed, and how often a step is crossed.
KIND_POLICIES: dict[str, tuple[int, int]] = {
    "flight_delay": (30, 45),
    "cancellation": (0, 45),
    "missed_connection": (0, 45),
    "lost_baggage": (0, 24 * 60),
    "service_outage": (15, 60),
    "order_late": (24 * 60, 24 * 60),
}


class EscalationPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Below `notice_minutes` nothing is sent; then one step per `step_minutes` of delay."""

    notice_minutes: Annotated[int, msgspec.Meta(ge=0)] = 30
    step_minutes: Annotated[int, msgspec.Meta(gt=0)] = 45

    @classmethod
    def for_kind(cls, kind: str) -> EscalationPolicy:
        notice, step = KIND_POLICIES.get(kind, (30, 45))
        return cls(notice_minutes=notice, step_minutes=step)

    def step(self, delay_minutes: int) -> int:
        """Step 0 is "not noticed"; 30 min is step 1, 45 step 2, 90 step 3, 135 step 4…"""
        if delay_minutes < self.notice_minutes:
            return 0
        return delay_minutes // self.step_minutes + 1

    def first_minute(self, step: int) -> int:
        """The least delay that reaches `step` (the inverse of `step`): 30, 45, 90, 135…"""
        if step <= 1:
            return self.notice_minutes if step == 1 else 0
        return max((step - 1) * self.step_minutes, self.notice_minutes)


class FactsError(ValueError):
    """Facts that are well-formed but unusable (an unknown airport); names the field."""


def entitlements(incident: Incident) -> tuple[list[dict[str, Any]], str | None]:
    """What the law owes for this incident's facts, and a note when it cannot be assessed.

    Entitlements depend on the incident, not the customer: computed once per update.
    """
    from offers.incidents.law import FlightContext, entitlements_for

    f = incident.facts
    if not isinstance(f, FlightFacts):
        return [], None  # the flight passenger rules do not cover bags, services or orders
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
        cancelled=incident.kind == "cancellation",
    )
    if isinstance(f, CancellationFacts):
        ctx = msgspec.structs.replace(
            ctx,
            notice_days=f.notice_days or 0,
            reroute_departs_early_minutes=f.reroute_departs_early_minutes,
        )
    try:
        found = entitlements_for(ctx)
    except ValueError as exc:
        raise FactsError(f"facts.{exc}") from exc
    if not found:
        return [], "no legal entitlement for this route and delay"
    return [msgspec.structs.asdict(e) for e in found], None
