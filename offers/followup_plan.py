"""Follow-ups planned for the customers an update apologized to, within the contact
allowance of the window, and attached to the decisions as the ledger's reader would."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from offers.decide import ContactPolicy, schedule_followups
from offers.ledger import FOLLOWUP_LIST

__all__ = ["PLANNED_SCHEMA", "PLAN_COLUMNS", "plan", "with_followups"]

PLANNED_SCHEMA: dict[str, Any] = {
    "customer_id": pl.String,
    "kind": pl.String,
    "due_at": pl.Datetime("us", "UTC"),
}


#: What `plan` reads of the customers.
PLAN_COLUMNS = ("customer_id", "timezone", "consent_marketing")


def with_followups(fresh: pl.DataFrame, planned: pl.DataFrame) -> pl.DataFrame:
    """Attach the follow-ups just scheduled, as the ledger's reader would: a list per
    decision, earliest first (`planned` is one row per follow-up)."""
    lists = planned.group_by("customer_id").agg(
        followups=pl.struct("due_at", "kind").sort_by("due_at")
    )
    return fresh.join(lists, on="customer_id", how="left", maintain_order="left").with_columns(
        pl.col("followups").fill_null(pl.lit([], dtype=FOLLOWUP_LIST))
    )


def plan(
    fresh: pl.DataFrame,
    customers: pl.DataFrame,
    busy: pl.DataFrame,
    now: datetime,
    policy: ContactPolicy,
) -> pl.DataFrame:
    """Follow-ups for customers apologized to now, who consented and have none pending.

    Check-in and feedback about one incident make up the marketing-contact allowance of the
    window; a customer with follow-ups from another incident in the window (`busy`) gets
    none. One row per follow-up (`PLANNED_SCHEMA`), as `Tx.record` takes them.
    """
    none = pl.DataFrame(schema=PLANNED_SCHEMA)
    if policy.marketing_contacts_per_window == 0:
        return none
    eligible = (
        fresh.select("customer_id", "channel", "message_kind")
        .filter((pl.col("message_kind") == "apology") & pl.col("channel").is_not_null())
        .select("customer_id")
        .join(customers.select(PLAN_COLUMNS), on="customer_id")
        .filter("consent_marketing")
        .join(busy, on="customer_id", how="anti")
    )
    if eligible.is_empty():
        return none
    due = schedule_followups(eligible.select("customer_id", "timezone"), now, policy)
    if policy.marketing_contacts_per_window >= 2:  # the policy plans two: both fit
        return due
    same = pl.col("customer_id")  # sorted by customer, then due time: keep each one's first
    return due.filter(same.shift(1).ne_missing(same))
