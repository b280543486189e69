"""Why each decision is what it is, in words a service agent can read back to the customer.

A million customers fall into a few hundred situations (segment, rule, outcome), so the
words are built once per situation and joined back, never per customer. Each wording gets
the `reason_id` under which the ledger keeps it once.
"""

from __future__ import annotations

from typing import Any

import msgspec
import polars as pl

from offers.decide.context import StepContext
from offers.record import reason_id
from offers.situations import situation_key

__all__ = ["entitlements_json", "with_reasons"]

#: Columns that decide the wording of the reasons; customers sharing them share the words.
_REASON_KEYS = (
    "_limit",
    "segment",
    "segment_description",
    "message_kind",
    "rule_id",
    "candidate",
    "_drop",
    "replaces",
    "held_id",
    "charged_cost",
    "needs_human",
    "other_incidents",
    "perk_incidents",
    "_no_channel",
    "_lang",
    "text_language",
    "_name_fit",
    "_learn",
    "_set",
)


def _reason_text(row: dict[str, Any], ctx: StepContext) -> str:
    """Why this decision, in words a service agent can read back to the customer (JSON list)."""
    policy = ctx.policy
    reasons = [
        f"segment {row['segment']}: {row['segment_description']}",
        f"step {ctx.step}: delay of {ctx.incident.facts.delay_minutes} min",
        "first message of this incident: apology"
        if row["message_kind"] == "apology"
        else "customer already apologized to in this incident: update",
        "no offer rule matched"
        if row["rule_id"] is None
        else f"rule {row['rule_id']} matched: {row['candidate']}",
    ]
    if ctx.table_note:
        reasons.append(ctx.table_note)
    learn = ctx.learning.config if ctx.learning is not None else None
    if row["_learn"] == "explore" and learn is not None:
        reasons.append(
            f"learning: trying {row['candidate']} among the rule's perks {row['_set']} "
            f"(a random {learn.share:.0%} of customers get one of them at random)"
        )
    elif row["_learn"] == "exploit":
        reasons.append(
            f"learning: {row['candidate']} has the best acceptance so far among the "
            f"rule's perks {row['_set']}"
        )
    elif row["_learn"] == "first" and learn is not None:
        reasons.append(
            f"learning: the rule's own perk {row['candidate']} until one of {row['_set']} "
            f"has {learn.min_events} delivered decisions in this segment"
        )
    if ctx.entitlement_note:
        reasons.append(ctx.entitlement_note)
    band = ctx.value.band(ctx.step)
    if band is not None:
        reasons.append(
            f"value band for step {ctx.step}: {band.min_value:g}-{band.max_value:g}, "
            "the same for everyone affected"
        )
    drop = row["_drop"]
    if drop == "already":
        reasons.append(f"perk {row['candidate']} was already issued in this incident")
    elif drop == "no_gain":
        reasons.append(
            f"perk {row['candidate']} adds no value over {row['held_id']} held from this incident"
        )
    elif drop == "holdout":
        reasons.append(
            f"holdout: {policy.holdout_share:.0%} of each incident get the message and what the "
            "law owes, no perk, so the perk's effect can be measured"
        )
    elif drop == "cap":
        reasons.append(
            f"contact cap: perks in {row['perk_incidents']} other incidents within "
            f"{policy.window_days} days (limit {policy.max_perks})"
        )
    elif drop == "limit":
        reasons.append(
            f"rule {row['rule_id']} allows {row['candidate']} at most {row['_limit']} times "
            f"per customer within {policy.window_days} days"
        )
    elif drop == "stock":
        reasons.append(f"stock: no {row['candidate']} left at {ctx.incident.facts.origin} today")
    elif drop == "budget":
        reasons.append(
            f"budget: the incident budget left ({ctx.budget_left or 0:,.2f}) went to perks "
            "with more value per cost"
        )
    if row["replaces"] is not None:
        reasons.append(
            f"upgrade of {row['replaces']}: charged the difference, {row['charged_cost']:.2f}"
        )
    if row["needs_human"]:
        reasons.append(
            f"second failure within the window ({row['other_incidents']} other incidents): "
            "flagged for a human"
        )
    if row["_no_channel"]:
        reasons.append("no allowed channel: no message")
    if row["_name_fit"] is not None:
        reasons.append(f"SMS budget: the name was {row['_name_fit']} to keep the SMS in budget")
    if row["text_language"] is not None and row["text_language"] != row["_lang"]:
        reasons.append(f"no {row['_lang']} template: sent in {row['text_language']}")
    return msgspec.json.encode(reasons).decode()


def entitlements_json(ctx: StepContext) -> str:
    """What the law owes everyone affected, as the JSON text every decision carries."""
    return msgspec.json.encode(ctx.entitlements).decode()


def with_reasons(frame: pl.DataFrame, ctx: StepContext) -> pl.DataFrame:
    """`reasons` as JSON text and its `reason_id`, worded once per distinct situation and
    joined back (also adds `_no_channel`, `_lang` and `_situation`).

    A column null on every row is left out of the key (it is the same for everyone), and
    only the key is joined back, not the whole frame."""
    keyed = frame.with_columns(
        _no_channel=pl.col("channel").is_null(), _lang=pl.col("language").cast(pl.String)
    )
    varying = [c for c in _REASON_KEYS if keyed[c].null_count() < keyed.height]
    key = keyed.select(situation_key(varying).alias("_situation"), *_REASON_KEYS)
    situations = key.unique("_situation")
    words = [_reason_text(row, ctx) for row in situations.iter_rows(named=True)]
    owed = entitlements_json(ctx)
    lookup = pl.DataFrame(
        {
            "_situation": situations["_situation"],
            "reasons": pl.Series(words, dtype=pl.String),
            "reason_id": pl.Series([reason_id(w, owed) for w in words], dtype=pl.Int64),
        }
    )
    back = key[["_situation"]].join(lookup, on="_situation", how="left", maintain_order="left")
    return keyed.hstack(back.get_columns())  # new columns: stacking plans nothing
