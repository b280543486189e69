"""Which columns an offer table's conditions may name, and which of them pick out customers.

Incident columns (step, delay, airport…) say when a rule applies; `segment`, `persona` and
profile columns say to whom. Coverage counts a rule as speaking to a segment only through
the latter.
"""

from __future__ import annotations

from offers.incidents import FlightFacts
from segmentation.profiles import PROFILE_SCHEMA, PROTECTED_COLUMNS

__all__ = ["INCIDENT_COLUMNS", "default_columns", "targets_customers"]

#: Columns the engine adds to each customer's row: segment, step, channel and incident facts.
INCIDENT_COLUMNS: frozenset[str] = frozenset(
    {
        "segment",
        "step",
        "delay_minutes",
        "kind",
        "channel",
        "language",
        "airport",
        "distance_km",
        "cause",
        *FlightFacts.__struct_fields__,
    }
)


def default_columns() -> frozenset[str]:
    """Every column a condition may name: non-protected profile columns and incident facts."""
    return frozenset(PROFILE_SCHEMA) - PROTECTED_COLUMNS | INCIDENT_COLUMNS | {"persona"}


def targets_customers(column: str) -> bool:
    """Whether a condition on `column` picks out customers (not the incident's moment)."""
    return column not in INCIDENT_COLUMNS or column == "segment"
