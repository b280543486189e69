"""The columns a decision reads: the customer's profile, the incident's facts, the channel.

Incident facts become literal columns so that an offer rule can name them exactly like a
profile column; where a fact and a profile column share a name, the fact wins (it is what
happened now). Only the profile columns the engine or a rule reads are carried along.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import polars as pl

from offers.catalog import OfferTable
from offers.decide.context import StepContext
from offers.incidents import Incident

__all__ = ["profile_columns", "select_profiles", "with_step_facts"]

#: Profile columns the engine itself reads; rule conditions may add more.
_ENGINE_COLUMNS = (
    "customer_id",
    "segment",
    "segment_description",
    "language",
    "preferred_channel",
    "allowed_channels",
    "first_name",
)

#: Columns every step adds to the facts (see `_fact_columns`).
_STEP_FACTS = ("incident_id", "kind", "step", "delay_minutes", "subject", "airport")


def _scalar_facts(incident: Incident) -> dict[str, Any]:
    facts = msgspec.structs.asdict(incident.facts)
    return {k: v for k, v in facts.items() if not isinstance(v, (dict, list))}


def _fact_columns(incident: Incident, step: int) -> dict[str, pl.Expr]:
    """Incident facts as literal columns, so rules can name them like profile columns."""
    facts = _scalar_facts(incident)
    columns = {k: pl.lit(v) for k, v in facts.items()}
    columns.update(
        incident_id=pl.lit(incident.incident_id),
        kind=pl.lit(incident.kind),
        step=pl.lit(step, pl.Int32),
        delay_minutes=pl.lit(incident.facts.delay_minutes, pl.Int32),
        # what the message is about: the flight, or the order, bag or service
        subject=pl.lit(facts.get("flight") or facts.get("reference")),
        airport=pl.lit(facts.get("origin")),
    )
    return columns


def profile_columns(table: OfferTable, available: Sequence[str], incident: Incident) -> list[str]:
    """The profile columns a decision reads: the engine's own and those the rules name
    (an incident fact of the same name wins over a profile column)."""
    rule_columns = sorted({c for r in table.rules for c in r.when})
    facts = {*_scalar_facts(incident), *_STEP_FACTS}  # the names `_fact_columns` gives
    return [
        c
        for c in dict.fromkeys([*_ENGINE_COLUMNS, *rule_columns])
        if c in available and c not in facts
    ]


def _channel() -> pl.Expr:
    """Preferred channel when allowed, else the first allowed one, else none."""
    allowed = pl.col("allowed_channels")
    return (
        pl.when(allowed.list.contains(pl.col("preferred_channel")))
        .then(pl.col("preferred_channel").cast(pl.String))
        .otherwise(allowed.list.first().cast(pl.String))
    )


def select_profiles(customers: pl.DataFrame, table: OfferTable, incident: Incident) -> pl.DataFrame:
    """The profile columns a decision reads, and the id hash where the profile book made one
    (holdout and learning then salt it instead of hashing every id again)."""
    wanted = profile_columns(table, customers.columns, incident)
    if "_id_hash" in customers.columns:
        wanted.append("_id_hash")
    return customers.select(wanted)


def with_step_facts(frame: pl.DataFrame, ctx: StepContext) -> pl.DataFrame:
    """The incident's facts, the message kind (an apology first, then updates) and the
    channel. `frame` has `last_step` (null: nothing sent yet in this incident)."""
    return frame.with_columns(
        **_fact_columns(ctx.incident, ctx.step),
        message_kind=pl.when(pl.col("last_step").is_null())
        .then(pl.lit("apology"))
        .otherwise(pl.lit("update")),
        channel=_channel(),
    )
