"""Decisions joined with their feedback: what learning, simulation and reports read.

Two narrow reads of the ledger database (decisions since a time; events about them) and
one polars aggregation per decision; nothing here writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from offers.ledger import Ledger
from offers.ledger.schema import decisions, feedback_events

__all__ = ["DECISION_KEY", "OUTCOME_SCHEMA", "decision_flags", "feedback_about", "load_outcomes"]

#: One row per decision, with what its feedback says.
OUTCOME_SCHEMA: dict[str, Any] = {
    "incident_id": pl.String,
    "step": pl.Int32,
    "customer_id": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "segment": pl.String,
    "rule_id": pl.String,
    "perk_id": pl.String,
    "perk_cost": pl.Float64,
    "charged_cost": pl.Float64,
    "holdout": pl.Boolean,
    "propensity": pl.Float64,
    "delivered": pl.Boolean,
    "opened": pl.Boolean,
    "redeemed": pl.Boolean,
    "complaint": pl.Boolean,
    "rating": pl.Float64,
    "returned": pl.Boolean,
}

_DECISION_COLUMNS = (
    "incident_id",
    "step",
    "customer_id",
    "created_at",
    "segment",
    "rule_id",
    "perk_id",
    "perk_cost",
    "charged_cost",
    "holdout",
    "propensity",
)
DECISION_KEY = ("incident_id", "step", "customer_id")


def decision_flags(found: pl.DataFrame) -> pl.DataFrame:
    """Per decision key: what its events say."""
    kind = pl.col("kind")
    return found.group_by(DECISION_KEY).agg(
        delivered=kind.is_in(["delivered", "opened", "redeemed", "rating", "complaint"]).any(),
        opened=kind.is_in(["opened", "redeemed"]).any(),
        redeemed=(kind == "redeemed").any(),
        complaint=(kind == "complaint").any(),
        rating=pl.col("rating").mean(),
        returned=kind.is_in(["rebooked", "returned"]).any(),
    )


def feedback_about(ledger: Ledger, since: datetime, with_perk: bool) -> pl.DataFrame:
    """Events about decisions made since `since` (only those with a perk if `with_perk`),
    with the decision's segment and perk."""
    d, e = decisions.c, feedback_events.c
    query = (
        sa.select(e.incident_id, e.step, e.customer_id, e.kind, e.rating, d.segment, d.perk_id)
        .join(
            decisions,
            sa.and_(
                d.incident_id == e.incident_id, d.step == e.step, d.customer_id == e.customer_id
            ),
        )
        .where(d.created_at >= since)
    )
    if with_perk:
        query = query.where(d.perk_id.is_not(None))
    schema = {
        **{c: OUTCOME_SCHEMA[c] for c in DECISION_KEY},
        "kind": pl.String,
        "rating": pl.Float64,
        "segment": pl.String,
        "perk_id": pl.String,
    }
    with ledger.reading() as tx:
        return pl.DataFrame(tx.conn.execute(query).all(), schema=schema, orient="row")


_BOOLS = ("delivered", "opened", "redeemed", "complaint", "returned")


def load_outcomes(ledger: Ledger, since: datetime) -> pl.DataFrame:
    """Every decision since `since`, with flags from its feedback (false where none came).

    `delivered` is any sign the message arrived (delivered, opened, redeemed, rating,
    complaint); `returned` is a rebooked or returned event.
    """
    d = decisions.c
    query = sa.select(*(d[c] for c in _DECISION_COLUMNS)).where(d.created_at >= since)
    dschema = {c: OUTCOME_SCHEMA[c] for c in _DECISION_COLUMNS}
    with ledger.reading() as tx:
        frame = pl.DataFrame(tx.conn.execute(query).all(), schema=dschema, orient="row")
    flags = decision_flags(feedback_about(ledger, since, with_perk=False))
    return (
        frame.join(flags, on=list(DECISION_KEY), how="left")
        .with_columns(pl.col(c).fill_null(False) for c in _BOOLS)
        .select(pl.col(c).cast(t) for c, t in OUTCOME_SCHEMA.items())
    )
