"""Contact policy: who may be given a perk or contacted again, and when.

Defaults follow DESIGN.md's evidence: one apology per incident, at most three perks per
customer per 30 days (an incident's perk and its upgrades count once), a second failure
inside the window flagged for a human, a small holdout that gets the message and the law
but no perk, follow-ups after 2 and 7 days outside quiet hours and within a monthly limit.
Everything here is column expressions over the incident frame.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
import polars as pl

from segmentation.ids import unit_interval

Share = Annotated[float, msgspec.Meta(ge=0.0, le=0.5)]


class ContactPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    holdout_share: Share = 0.05
    max_perks: Annotated[int, msgspec.Meta(ge=0)] = 3
    window_days: Annotated[int, msgspec.Meta(ge=1)] = 30
    checkin_after_days: Annotated[int, msgspec.Meta(ge=1)] = 2
    feedback_after_days: Annotated[int, msgspec.Meta(ge=1)] = 7
    #: One incident's check-in and feedback request; then nothing more until the window ends.
    marketing_contacts_per_window: Annotated[int, msgspec.Meta(ge=0)] = 2
    quiet_start_hour: Annotated[int, msgspec.Meta(ge=0, le=23)] = 21
    quiet_end_hour: Annotated[int, msgspec.Meta(ge=0, le=23)] = 8


class ValueBand(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """From `from_step` on, every perk given is worth between `min_value` and `max_value`."""

    from_step: Annotated[int, msgspec.Meta(ge=1)]
    min_value: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    max_value: Annotated[float, msgspec.Meta(ge=0)]


class ValuePolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Same incident, same floor: one value band per step for everyone affected.

    Personalization chooses the perk's type inside the band (a lounge pass or a duty-free
    discount of similar worth), not who is worth more. Rules whose perk falls outside the
    step's band are skipped for that step. The defaults grow with the delay.
    """

    bands: list[ValueBand] = msgspec.field(
        default_factory=lambda: [
            ValueBand(from_step=1, min_value=5.0, max_value=45.0),
            ValueBand(from_step=3, min_value=5.0, max_value=160.0),
        ]
    )

    def band(self, step: int) -> ValueBand | None:
        eligible = [b for b in self.bands if b.from_step <= step]
        return max(eligible, key=lambda b: b.from_step) if eligible else None


def holdout_mask(
    customer_ids: pl.Series, incident_id: str, share: float, hashes: pl.Series | None = None
) -> pl.Series:
    """Deterministic by (incident, customer): the same customers every time, about `share`."""
    if share <= 0 or customer_ids.is_empty():
        return pl.Series("holdout", np.zeros(len(customer_ids), dtype=bool))
    return pl.Series("holdout", unit_interval(customer_ids, incident_id, hashes) < share)


def recent_counts(recent: pl.DataFrame) -> pl.DataFrame:
    """Per customer: other incidents in the window, and how many of them carried a perk."""
    return recent.group_by("customer_id").agg(
        other_incidents=pl.col("incident_id").n_unique().cast(pl.Int32),
        perk_incidents=pl.col("incident_id").filter(pl.col("perk_id").is_not_null()).n_unique(),
    )


def _next_allowed(due: datetime, tz: str, policy: ContactPolicy) -> datetime:
    """`due` if outside quiet hours in `tz`, else the end of those quiet hours."""
    local = due.astimezone(ZoneInfo(tz))
    start, end = policy.quiet_start_hour, policy.quiet_end_hour
    quiet = (local.hour >= start or local.hour < end) if start > end else start <= local.hour < end
    if not quiet:
        return due
    morning = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if local.hour >= end:
        morning += timedelta(days=1)
    return morning.astimezone(UTC)


def schedule_followups(
    customers: pl.DataFrame, decided_at: datetime, policy: ContactPolicy
) -> pl.DataFrame:
    """(customer_id, kind, due_at) for customers given (`customer_id`, `timezone`).

    Due times are the same instant for everyone; only the timezone moves them out of quiet
    hours, so the work is per distinct timezone, joined back to the customers.
    """
    kinds = (("check-in", policy.checkin_after_days), ("feedback", policy.feedback_after_days))
    zones = customers["timezone"].fill_null("UTC").unique().to_list()
    table = pl.DataFrame(
        [
            (tz, kind, _next_allowed(decided_at + timedelta(days=days), tz, policy))
            for tz in zones
            for kind, days in kinds
        ],
        schema={"timezone": pl.String, "kind": pl.String, "due_at": pl.Datetime("us", "UTC")},
        orient="row",
    )
    return (
        customers.select("customer_id", pl.col("timezone").fill_null("UTC"))
        .join(table, on="timezone", how="inner")
        .select("customer_id", "kind", "due_at")
        .sort("customer_id", "due_at")
    )
