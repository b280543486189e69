"""Follow-ups as a decision row stores them (the first, and the one after it) and as the
ledger hands them back (a list per decision, earliest first); both ways in whole columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

__all__ = [
    "FOLLOWUP_LIST",
    "FOLLOWUP_SCHEMA",
    "STORED_FOLLOWUPS",
    "FeedPosition",
    "feed_position",
    "paired",
    "with_followup_lists",
]

#: A decision's follow-ups as handed back: (due_at, kind), earliest first.
FOLLOWUP_LIST = pl.List(pl.Struct({"due_at": pl.Datetime("us", "UTC"), "kind": pl.String}))

#: A follow-up due, one row each, as `Ledger.followups_due` lists them: the decision's
#: key (incident, step, customer), which of its follow-ups (`slot` 0: the first, 1: the one
#: after), what and when, and where to send it.
FOLLOWUP_SCHEMA: dict[str, Any] = {
    "incident_id": pl.String,
    "step": pl.Int32,
    "customer_id": pl.String,
    "slot": pl.Int32,
    "kind": pl.String,
    "due_at": pl.Datetime("us", "UTC"),
    "channel": pl.String,
    "language": pl.String,
}

#: Where a follow-up stands in the feed, which lists them in this order: (due_at,
#: incident_id, step, customer_id, slot). Unique per follow-up, so paging after a position
#: lists each one once.
FeedPosition = tuple[datetime, str, int, str, int]


def feed_position(row: dict[str, Any]) -> FeedPosition:
    """A listed follow-up's position in the feed (a row of `FOLLOWUP_SCHEMA`)."""
    return (row["due_at"], row["incident_id"], row["step"], row["customer_id"], row["slot"])


#: A decision's follow-ups as stored on its row: the first, and the one after it if any.
STORED_FOLLOWUPS: dict[str, Any] = {
    "followup_kind": pl.String,
    "followup_at": pl.Datetime("us", "UTC"),
    "then_kind": pl.String,
    "then_at": pl.Datetime("us", "UTC"),
}


def paired(planned: pl.DataFrame) -> pl.DataFrame:
    """Follow-ups, one row each, as stored: one row per customer, the next one beside.

    Sorting and shifting, not grouping: a million customers cost two passes, no hash table.
    """
    rows = planned.sort("customer_id", "due_at")
    same = pl.col("customer_id")
    if rows.select((same == same.shift(2)).any()).item():
        raise ValueError("at most two follow-ups per customer are stored")
    nxt = same.shift(-1) == same
    return rows.select(
        "customer_id",
        followup_kind="kind",
        followup_at="due_at",
        then_kind=pl.when(nxt).then(pl.col("kind").shift(-1)),
        then_at=pl.when(nxt).then(pl.col("due_at").shift(-1)),
    ).filter(same.shift(1).ne_missing(same))


def with_followup_lists(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with `followups` (a list of (due_at, kind), earliest first) in place of the
    stored follow-up columns.

    Through a long frame of the follow-ups and one grouping: a list of structs built row
    by row (`concat_list`) costs about 40 times as much.
    """
    rows = frame.with_row_index("_row")
    long = pl.concat(
        [
            rows.select("_row", due_at="followup_at", kind="followup_kind"),
            rows.select("_row", due_at="then_at", kind="then_kind"),
        ]
    ).drop_nulls("kind")
    lists = (
        long.sort("_row", maintain_order=True)
        .group_by("_row", maintain_order=True)
        .agg(followups=pl.struct("due_at", "kind"))
    )
    return (
        rows.join(lists, on="_row", how="left", maintain_order="left")
        .drop("_row", *STORED_FOLLOWUPS)
        .with_columns(pl.col("followups").fill_null(pl.lit([], dtype=FOLLOWUP_LIST)))
    )
