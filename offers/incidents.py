"""Incidents and their escalation steps.

An incident evolves (the delay grows); each update may cross a new escalation step. Steps
are what the ledger counts: a customer is decided at most once per (incident, step).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

Minutes = Annotated[int, msgspec.Meta(ge=0, le=7 * 24 * 60)]
IncidentId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[\w.:-]+$")]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class FlightFacts(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What happened to a flight, as the service desk knows it now."""

    delay_minutes: Minutes
    flight: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    origin: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] | None = None
    destination: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] | None = None


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
