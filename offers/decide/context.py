"""What one incident step is, the same for every customer: `StepContext`.

A module of its own so that every stage of the engine, and the wording of the reasons, can
read the step without importing the engine that runs the stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from offers.decide.choice import Learning
from offers.decide.policy import ContactPolicy, ValuePolicy
from offers.incidents import Incident

__all__ = ["StepContext"]


@dataclass(frozen=True)
class StepContext:
    """Everything about the step that is the same for every customer."""

    incident: Incident
    step: int
    now: datetime
    policy: ContactPolicy = field(default_factory=ContactPolicy)
    budget_left: float | None = None
    entitlements: list[dict[str, Any]] = field(default_factory=list)
    entitlement_note: str | None = None
    #: Posteriors and bounds for learning among rules' alternatives; None: the table decides.
    learning: Learning | None = None
    value: ValuePolicy = field(default_factory=ValuePolicy)
    #: perk id -> how many more may be given at the incident's airport today
    stock_left: dict[str, int] = field(default_factory=dict)
    #: Why no table decides this step (none is live); None: a table does.
    table_note: str | None = None
