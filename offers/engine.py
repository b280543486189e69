"""The decision engine: one incident step for every affected customer, as columns.

Input is a frame of affected customers (profile columns plus `segment` and
`segment_description`) and what each already received in this incident. Output is one
decision row per customer: message kind, channel, language, text, perk and reasons. Nothing
here loops over customers; nothing here writes anywhere.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime

import numpy as np
import polars as pl

from offers.incidents import Incident
from offers.messages import MessageBook, render
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
    "currency",
    "perk_code",
    "valid_until",
    "propensity",
    "reasons",
)

#: What the engine needs to know of earlier decisions in the same incident.
HISTORY_SCHEMA = {"customer_id": pl.String, "step": pl.Int32, "perk_id": pl.String}

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over a phone


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


def decide(
    customers: pl.DataFrame,
    history: pl.DataFrame,
    incident: Incident,
    step: int,
    table: OfferTable,
    book: MessageBook,
    now: datetime,
) -> pl.DataFrame:
    """Decisions for `step` for customers not yet decided at this step or a later one."""
    prior = history.group_by("customer_id").agg(
        last_step=pl.col("step").max(),
        held=pl.col("perk_id").drop_nulls(),
    )
    facts = incident.facts
    frame = (
        customers.join(prior, on="customer_id", how="left")
        .filter(pl.col("last_step").is_null() | (pl.col("last_step") < step))
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
        )
    )
    frame = match(frame, table)
    already = pl.col("held").fill_null([]).list.contains(pl.col("perk_id"))
    frame = frame.with_columns(
        perk_id=pl.when(already).then(None).otherwise(pl.col("perk_id")),
        _already=pl.when(already).then(pl.col("perk_id")),
    )
    titles = perk_titles(table)
    frame = (
        frame.join(perk_frame(table), on="perk_id", how="left")
        .join(
            titles.rename({"language": "_lang"}),
            left_on=["perk_id", pl.col("language").cast(pl.String)],
            right_on=["perk_id", "_lang"],
            how="left",
        )
        .join(
            titles.filter(pl.col("language") == "en").drop("language"),
            on="perk_id",
            how="left",
            suffix="_en",
        )
        .with_columns(perk_title=pl.coalesce("perk_title", "perk_title_en"))
    )
    has_perk = pl.col("perk_id").is_not_null()
    today: date = now.date()
    frame = frame.with_columns(
        perk_code=pl.when(has_perk).then(perk_codes(frame.height)),
        valid_until=pl.when(has_perk).then(
            pl.lit(today) + pl.duration(days=pl.col("validity_days"))
        ),
        propensity=pl.lit(1.0),
    )
    frame = frame.with_columns(_perk_kind=pl.when(has_perk).then(pl.lit("perk_line")))
    frame = render(frame, book, incident.kind, "_perk_kind", "perk_line")
    frame = frame.with_columns(pl.col("perk_line").fill_null(""))
    frame = render(frame, book, incident.kind, "message_kind", "text")
    frame = frame.with_columns(reasons=_reasons(step, facts.delay_minutes))
    return frame.select(
        pl.col(c).cast(pl.String) if c in ("channel", "language") else pl.col(c)
        for c in DECISION_COLUMNS
    )


def _reasons(step: int, delay: int) -> pl.Expr:
    """Why this decision, in words a service agent can read back to the customer."""
    return pl.concat_list(
        pl.format("segment {}: {}", pl.col("segment"), pl.col("segment_description")),
        pl.lit(f"step {step}: delay of {delay} min"),
        pl.when(pl.col("message_kind") == "apology")
        .then(pl.lit("first message of this incident: apology"))
        .otherwise(pl.lit("customer already apologized to in this incident: update")),
        pl.when(pl.col("rule_id").is_null())
        .then(pl.lit("no offer rule matched"))
        .when(pl.col("_already").is_not_null())
        .then(
            pl.format(
                "rule {} matched, but perk {} was already issued in this incident",
                pl.col("rule_id"),
                pl.col("_already"),
            )
        )
        .otherwise(pl.format("rule {} matched: {}", pl.col("rule_id"), pl.col("perk_id"))),
        pl.when(pl.col("channel").is_null()).then(pl.lit("no allowed channel: no message")),
        pl.when(
            pl.col("text_language").is_not_null()
            & (pl.col("text_language") != pl.col("language").cast(pl.String))
        ).then(
            pl.format("no {} template: sent in {}", pl.col("language"), pl.col("text_language"))
        ),
    ).list.drop_nulls()
