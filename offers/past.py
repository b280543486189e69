"""What an update reads of the ledger about the customers it decides for, and no more.

This incident's earlier decisions (none for an incident the update opens), the customers'
decisions in other incidents of the contact window (caps, human flags) and who has another
incident's follow-ups due in it. The last two need the customers staged in the database; a
huge incident with no other incident recent enough to matter stages nobody.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from offers.decide import ContactPolicy
from offers.ledger import Tx
from offers.ledger.around import read_around
from offers.record import HISTORY_SCHEMA, RECENT_SCHEMA

__all__ = ["read_past"]


def read_past(
    tx: Tx,
    incident_id: str,
    affected: pl.Series,
    now: datetime,
    policy: ContactPolicy,
    fresh_incident: bool,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """What the engine and the follow-up plan read of the ledger: this incident's earlier
    decisions (none for an incident this update opens), the customers' decisions in other
    incidents of the contact window, and those with another incident's follow-ups due in
    it (`offers.ledger.around`, one statement over the staged customers). The last two
    are read only when another incident was updated recently enough to hold such rows:
    most huge incidents stage nobody."""
    since = now - timedelta(days=policy.window_days)
    # a follow-up is due at most its delay (and a night's quiet hours) after its decision
    latest = max(policy.checkin_after_days, policy.feedback_after_days) + 2
    if tx.others_since(incident_id, since - timedelta(days=latest)):
        tx.stage(affected)
        around = read_around(tx, incident_id, since)
        return around.history, around.recent, around.busy
    history = pl.DataFrame(schema=HISTORY_SCHEMA) if fresh_incident else tx.history(incident_id)
    return (
        history,
        pl.DataFrame(schema=RECENT_SCHEMA),
        pl.DataFrame(schema={"customer_id": pl.String}),
    )
