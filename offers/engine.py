"""The decision engine: one incident step for every affected customer, as columns.

Input is a frame of affected customers (profile columns plus `segment` and
`segment_description`), what each already received in this incident, and their other
incidents in the contact window. Output is one decision row per customer: message kind,
channel, language, text, perk (or why none), entitlements and reasons. Nothing here loops
over customers; nothing here writes anywhere.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from offers.allocation import allocate
from offers.incidents import Incident
from offers.messages import MessageBook, render
from offers.policy import ContactPolicy, holdout_mask, recent_counts
from offers.tables import OfferTable, match, perk_frame, perk_titles

#: Columns of a decision, in the order the ledger stores them.
DECISION_COLUMNS = (
    "incident_id",
    "step",
    "customer_id",
    "segment",
    "segment_description",
    "message_kind",
    "channel",
    "language",
    "text",
    "rule_id",
    "perk_id",
    "perk_title",
    "perk_value",
    "perk_cost",
    "charged_cost",
    "replaces",
    "currency",
    "perk_code",
    "valid_until",
    "holdout",
    "needs_human",
    "propensity",
    "reasons",
    "entitlements",
)

#: What the engine needs to know of earlier decisions in the same incident.
HISTORY_SCHEMA = {
    "customer_id": pl.String,
    "step": pl.Int32,
    "perk_id": pl.String,
    "charged_cost": pl.Float64,
}

ENTITLEMENT_DTYPE = pl.List(
    pl.Struct(
        {
            "regime": pl.String,
            "kind": pl.String,
            "amount": pl.Float64,
            "currency": pl.String,
            "basis": pl.String,
        }
    )
)

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over a phone


@dataclass(frozen=True)
class StepContext:
    """Everything about the step that is the same for every customer."""

    incident: Incident
    step: int
    now: datetime
    policy: ContactPolicy = field(default_factory=ContactPolicy)
    budget_left: float | None = None
    entitlements: list[dict[str, Any]] = field(default_factory=list)
    entitlement_note: str | None = None


def perk_codes(n: int, length: int = 8) -> pl.Series:
    """Unguessable redemption codes, drawn in one vectorized call."""
    rng = np.random.default_rng(secrets.randbits(128))
    idx = rng.integers(0, len(_CODE_ALPHABET), size=(n, length), dtype=np.uint8)
    chars = np.frombuffer(_CODE_ALPHABET.encode("ascii"), dtype=np.uint8)[idx]
    codes = chars.view(f"S{length}").ravel() if n else np.array([], dtype=f"S{length}")
    return pl.Series("perk_code", codes, dtype=pl.Binary).cast(pl.String)


def _channel() -> pl.Expr:
    """Preferred channel when allowed, else the first allowed one, else none."""
    allowed = pl.col("allowed_channels")
    return (
        pl.when(allowed.list.contains(pl.col("preferred_channel")))
        .then(pl.col("preferred_channel").cast(pl.String))
        .otherwise(allowed.list.first().cast(pl.String))
    )


def _held(history: pl.DataFrame, perks: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per customer: the perks held from this incident, and the best held of each kind."""
    held = history.drop_nulls("perk_id").join(perks, on="perk_id", how="left")
    ids = held.group_by("customer_id").agg(held=pl.col("perk_id"))
    best = (
        held.sort("perk_value", descending=True)
        .group_by("customer_id", "perk_kind")
        .agg(
            held_id=pl.col("perk_id").first(),
            held_value=pl.col("perk_value").first(),
            held_cost=pl.col("perk_cost").first(),
        )
    )
    return ids, best


def decide(
    customers: pl.DataFrame,
    history: pl.DataFrame,
    recent: pl.DataFrame,
    ctx: StepContext,
    table: OfferTable,
    book: MessageBook,
) -> pl.DataFrame:
    """Decisions for `ctx.step` for customers not yet decided at this step or a later one."""
    incident, step, policy = ctx.incident, ctx.step, ctx.policy
    prior = history.group_by("customer_id").agg(last_step=pl.col("step").max())
    perks = perk_frame(table)
    held_ids, held_best = _held(history, perks)
    facts = incident.facts
    frame = (
        customers.join(prior, on="customer_id", how="left")
        .filter(pl.col("last_step").is_null() | (pl.col("last_step") < step))
        .join(held_ids, on="customer_id", how="left")
        .join(recent_counts(recent), on="customer_id", how="left")
        .with_columns(
            incident_id=pl.lit(incident.incident_id),
            kind=pl.lit(incident.kind),
            step=pl.lit(step, pl.Int32),
            delay_minutes=pl.lit(facts.delay_minutes, pl.Int32),
            flight=pl.lit(facts.flight),
            message_kind=pl.when(pl.col("last_step").is_null())
            .then(pl.lit("apology"))
            .otherwise(pl.lit("update")),
            channel=_channel(),
            held=pl.col("held").fill_null([]),
            other_incidents=pl.col("other_incidents").fill_null(0),
            perk_incidents=pl.col("perk_incidents").fill_null(0),
        )
    )
    frame = match(frame, table).rename({"perk_id": "candidate"})
    frame = frame.join(perks.rename({"perk_id": "candidate"}), on="candidate", how="left").join(
        held_best.rename({"perk_kind": "_kind"}),
        left_on=["customer_id", "perk_kind"],
        right_on=["customer_id", "_kind"],
        how="left",
    )
    holdout = holdout_mask(frame["customer_id"], incident.incident_id, policy.holdout_share)
    has_candidate = pl.col("candidate").is_not_null()
    already = pl.col("held").list.contains(pl.col("candidate"))
    no_gain = pl.col("held_value").is_not_null() & (pl.col("perk_value") <= pl.col("held_value"))
    capped = (pl.col("held").list.len() == 0) & (pl.col("perk_incidents") >= policy.max_perks)
    frame = frame.with_columns(holdout=holdout & has_candidate).with_columns(
        _drop=pl.when(~has_candidate)
        .then(pl.lit(None, pl.String))
        .when(already)
        .then(pl.format("perk {} was already issued in this incident", "candidate"))
        .when(no_gain)
        .then(
            pl.format(
                "perk {} adds no value over {} held from this incident", "candidate", "held_id"
            )
        )
        .when(pl.col("holdout"))
        .then(
            pl.lit(
                f"holdout: {policy.holdout_share:.0%} of each incident get the message "
                "and what the law owes, no perk, so the perk's effect can be measured"
            )
        )
        .when(capped)
        .then(
            pl.format(
                "contact cap: perks in {} other incidents within "
                f"{policy.window_days} days (limit {policy.max_perks})",
                "perk_incidents",
            )
        )
    )
    offered = has_candidate & pl.col("_drop").is_null()
    frame = frame.with_columns(
        charged_cost=pl.when(offered).then(
            (pl.col("perk_cost") - pl.col("held_cost").fill_null(0.0)).clip(lower_bound=0.0)
        ),
    )
    keep = allocate(frame, ctx.budget_left)
    frame = frame.with_columns(
        _drop=pl.when(offered & ~keep)
        .then(
            pl.lit(
                f"budget: the incident budget left ({ctx.budget_left or 0:,.2f}) "
                "went to perks with more value per cost"
            )
        )
        .otherwise(pl.col("_drop")),
    )
    given = has_candidate & pl.col("_drop").is_null()
    frame = frame.with_columns(
        perk_id=pl.when(given).then(pl.col("candidate")),
        charged_cost=pl.when(given).then(pl.col("charged_cost")),
        replaces=pl.when(given).then(pl.col("held_id")),
        propensity=pl.when(has_candidate & ~already & ~no_gain)
        .then(
            pl.when(pl.col("holdout"))
            .then(pl.lit(policy.holdout_share))
            .otherwise(pl.lit(1.0 - policy.holdout_share))
        )
        .otherwise(pl.lit(1.0)),
        needs_human=pl.col("other_incidents") > 0,
    )
    frame = _perk_facts(frame, table, ctx.now)
    frame = frame.with_columns(_perk_kind=pl.when(given).then(pl.lit("perk_line")))
    frame = render(frame, book, incident.kind, "_perk_kind", "perk_line")
    frame = frame.with_columns(pl.col("perk_line").fill_null(""))
    frame = render(frame, book, incident.kind, "message_kind", "text")
    frame = frame.with_columns(
        reasons=_reasons(ctx),
        entitlements=pl.lit(ctx.entitlements, dtype=ENTITLEMENT_DTYPE),
    )
    return frame.select(
        pl.col(c).cast(pl.String) if c in ("channel", "language") else pl.col(c)
        for c in DECISION_COLUMNS
    )


def _perk_facts(frame: pl.DataFrame, table: OfferTable, now: datetime) -> pl.DataFrame:
    """Title (customer's language, else English), code and validity of the given perk."""
    titles = perk_titles(table)
    given = pl.col("perk_id").is_not_null()
    frame = (
        frame.drop("perk_value", "perk_cost", "currency", "validity_days")
        .join(
            perk_frame(table).select(
                "perk_id", "perk_value", "perk_cost", "currency", "validity_days"
            ),
            on="perk_id",
            how="left",
        )
        .with_columns(_lang=pl.col("language").cast(pl.String))
        .join(titles.rename({"language": "_lang"}), on=["perk_id", "_lang"], how="left")
        .join(
            titles.filter(pl.col("language") == "en").drop("language"),
            on="perk_id",
            how="left",
            suffix="_en",
        )
        .with_columns(perk_title=pl.coalesce("perk_title", "perk_title_en"))
    )
    return frame.with_columns(
        perk_code=pl.when(given).then(perk_codes(frame.height)),
        valid_until=pl.when(given).then(
            pl.lit(now.date()) + pl.duration(days=pl.col("validity_days"))
        ),
    )


def _reasons(ctx: StepContext) -> pl.Expr:
    """Why this decision, in words a service agent can read back to the customer."""
    delay = ctx.incident.facts.delay_minutes
    return pl.concat_list(
        pl.format("segment {}: {}", pl.col("segment"), pl.col("segment_description")),
        pl.lit(f"step {ctx.step}: delay of {delay} min"),
        pl.when(pl.col("message_kind") == "apology")
        .then(pl.lit("first message of this incident: apology"))
        .otherwise(pl.lit("customer already apologized to in this incident: update")),
        pl.when(pl.col("rule_id").is_null())
        .then(pl.lit("no offer rule matched"))
        .otherwise(pl.format("rule {} matched: {}", pl.col("rule_id"), pl.col("candidate"))),
        pl.lit(ctx.entitlement_note, dtype=pl.String),
        pl.col("_drop"),
        pl.when(pl.col("replaces").is_not_null()).then(
            pl.format(
                "upgrade of {}: charged the difference, {}",
                pl.col("replaces"),
                pl.col("charged_cost").round(2),
            )
        ),
        pl.when(pl.col("needs_human")).then(
            pl.format(
                "second failure within the window ({} other incidents): flagged for a human",
                pl.col("other_incidents"),
            )
        ),
        pl.when(pl.col("channel").is_null()).then(pl.lit("no allowed channel: no message")),
        pl.when(
            pl.col("text_language").is_not_null()
            & (pl.col("text_language") != pl.col("language").cast(pl.String))
        ).then(
            pl.format("no {} template: sent in {}", pl.col("language"), pl.col("text_language"))
        ),
    ).list.drop_nulls()
