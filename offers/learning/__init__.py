"""Learning from what happened: feedback events, outcomes per decision, Beta posteriors of
acceptance per segment and perk, off-policy simulation of a draft table, the offers report,
and the simulated world the tests and the demo learn in.
"""

from offers.learning.evidence import LearningSource, load_learning, top_perks
from offers.learning.feedback import (
    EventResult,
    FeedbackEvent,
    decision_id_expr,
    events_frame,
    record_feedback,
)
from offers.learning.outcomes import load_outcomes
from offers.learning.report import render_offers_report, write_report
from offers.learning.simulate import Estimate, GroupEstimate, Simulation, parse_since, simulate
from offers.learning.world import World, make_world

__all__ = [
    "Estimate",
    "EventResult",
    "FeedbackEvent",
    "GroupEstimate",
    "LearningSource",
    "Simulation",
    "World",
    "decision_id_expr",
    "events_frame",
    "load_learning",
    "load_outcomes",
    "make_world",
    "parse_since",
    "record_feedback",
    "render_offers_report",
    "simulate",
    "top_perks",
    "write_report",
]
