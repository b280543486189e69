"""The engine: one incident step for every affected customer as a pipeline of column stages
(matching, learning's choice, contact policy, holdout, stock, budget, texts, reasons). It is
handed history, counts and posteriors as frames and imports nothing that touches a database.
"""

from offers.decide.choice import DEFAULT_CONFIG, POSTERIOR_SCHEMA, ExploreConfig, Learning
from offers.decide.columns import profile_columns
from offers.decide.context import StepContext
from offers.decide.engine import candidates, decide, finish, settle_stock_and_budget
from offers.decide.policy import ContactPolicy, ValuePolicy, schedule_followups

__all__ = [
    "DEFAULT_CONFIG",
    "POSTERIOR_SCHEMA",
    "ContactPolicy",
    "ExploreConfig",
    "Learning",
    "StepContext",
    "ValuePolicy",
    "candidates",
    "decide",
    "finish",
    "profile_columns",
    "schedule_followups",
    "settle_stock_and_budget",
]
