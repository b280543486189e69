"""What went wrong and what the law owes for it: incident kinds with their facts (a tagged
union), escalation steps, and legal entitlements (EU 261, UK261, Canada APPR, US DOT) computed
from versioned regime data with citations and the bundled airport list.
"""

from offers.incidents.kinds import (
    FLIGHT_KINDS,
    SERVICE_KINDS,
    AwareDatetime,
    CancellationFacts,
    EscalationPolicy,
    FactsError,
    FlightFacts,
    Incident,
    IncidentId,
    IncidentKind,
    ServiceFacts,
    entitlements,
    facts_type,
)

__all__ = [
    "FLIGHT_KINDS",
    "SERVICE_KINDS",
    "AwareDatetime",
    "CancellationFacts",
    "EscalationPolicy",
    "FactsError",
    "FlightFacts",
    "Incident",
    "IncidentId",
    "IncidentKind",
    "ServiceFacts",
    "entitlements",
    "facts_type",
]
