"""What an update reads about its customers, in one round trip.

An update needs three things the ledger holds about the customers it decides for: what
this incident already gave (`history`: who has which step, spent, upgrades), their
decisions in other incidents in the contact window (`recent`: caps, human flags), and who
has follow-ups of another incident due in the window (`busy`: the marketing allowance).
Read one query at a time they are three statements, each a compile, a bind and a trip to
the server; for a flight's few hundred passengers those fixed costs are most of the read.
Here they are one statement (`UNION ALL` of this incident's rows and the customers' other
rows in the window, with two flags), split into the three frames in polars.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from offers.ledger.reads import TxReads
from offers.ledger.schema import decisions
from offers.record import HISTORY_SCHEMA, RECENT_SCHEMA

__all__ = ["Around", "read_around"]

_READ: dict[str, Any] = {
    **HISTORY_SCHEMA,
    "incident_id": pl.String,
    "recent": pl.Boolean,
    "busy": pl.Boolean,
}


@dataclass(frozen=True)
class Around:
    #: This incident's decisions (`HISTORY_SCHEMA`), every customer's.
    history: pl.DataFrame
    #: The staged customers' decisions in other incidents since the window's start.
    recent: pl.DataFrame
    #: The staged customers with follow-ups of another incident due since then.
    busy: pl.DataFrame


def read_around(tx: TxReads, incident_id: str, since: datetime) -> Around:
    """`history`, `recent` and `busy` of the staged customers (`TxReads.stage`) in one query."""
    d = decisions.c
    followup_due = sa.or_(d.followup_at >= since, d.then_at >= since)
    own = sa.select(
        d.customer_id,
        d.step,
        d.perk_id,
        d.charged_cost,
        d.incident_id,
        sa.false().label("recent"),
        sa.false().label("busy"),
    ).where(d.incident_id == incident_id)
    others: sa.Select[Any] = sa.select(
        d.customer_id,
        d.step,
        d.perk_id,
        d.charged_cost,
        d.incident_id,
        (d.created_at >= since).label("recent"),
        sa.func.coalesce(followup_due, sa.false()).label("busy"),
    ).where(d.incident_id != incident_id, sa.or_(d.created_at >= since, followup_due))
    rows = tx.plain(sa.union_all(own, tx.of_staged(others, d.customer_id)), _READ)
    mine = pl.col("incident_id") == incident_id
    return Around(
        history=rows.filter(mine).select(list(HISTORY_SCHEMA)),
        recent=rows.filter(~mine & pl.col("recent")).select(list(RECENT_SCHEMA)),
        busy=rows.filter(~mine & pl.col("busy")).select("customer_id").unique(maintain_order=True),
    )
