"""The decision engine: one incident step for every affected customer, as columns.

Input is a frame of affected customers (profile columns plus `segment` and
`segment_description`), what each already received in this incident, and their other
incidents in the contact window. Output is one decision row per customer: message kind,
channel, language, text, perk (or why none), entitlements and reasons, and for the ledger
alone (`LEDGER_ONLY`) the `reason_id` under which it keeps each wording once, the text's
shell and the name spliced into it. Nothing here loops over customers; nothing here
writes anywhere. With `StepContext.learning`, the first hit's perk may give way to one of
the rule's alternatives learned from feedback (`offers.learning.evidence`); every decision
logs the probability of what it issued, perk or none, in `propensity`.

`decide` is a pipeline of stages, each a frame in and a frame out; the stages live with
what they are about (`columns`, `perks`, `eligibility`, `reasons`), those that only wire
other rooms in (history, the learned choice, the texts, the record) live here.
`candidates` and `finish` are its halves either side of stock and budget, for an engine
that decides a part of the customers at a time and settles those over all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import polars as pl

from offers.catalog import OfferTable, match, perk_frame
from offers.decide.choice import choose
from offers.decide.columns import select_profiles, with_step_facts
from offers.decide.context import StepContext
from offers.decide.eligibility import (
    drop_out_of_stock,
    drop_over_budget,
    with_drops,
    with_outcome,
    with_withheld_odds,
)
from offers.decide.literal import constant
from offers.decide.perks import (
    HeldPerks,
    held_perks,
    with_candidate_perks,
    with_perk_facts,
    with_rule_limits,
    within_band,
)
from offers.decide.policy import recent_counts
from offers.decide.reasons import entitlements_json, with_reasons
from offers.memo import per_object
from offers.messages import MessageBook, render_texts
from offers.record import DECISION_COLUMNS

__all__ = [
    "as_record",
    "candidates",
    "decide",
    "finish",
    "settle_stock_and_budget",
    "with_choice",
    "with_history",
    "with_recent_incidents",
    "with_texts",
]


def decide(
    customers: pl.DataFrame,
    history: pl.DataFrame,
    recent: pl.DataFrame,
    ctx: StepContext,
    table: OfferTable,
    book: MessageBook,
    *,
    settle: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Decisions for `ctx.step` for customers not yet decided at this step or a later one.

    Every stage reads one customer's row alone except stock and budget, which weigh the
    whole incident: `settle` (default `settle_stock_and_budget`) is where they run, so an
    engine that decides part of the customers at a time can settle them over all of them.
    """
    perks = _perk_frame(table)
    banded = within_band(table, ctx)
    held = None if history.is_empty() else held_perks(history, perks)
    frame = _candidates(customers, history, recent, ctx, table, perks, banded, held)
    settled = settle(frame) if settle is not None else settle_stock_and_budget(frame, ctx)
    return _finished(settled, recent, ctx, table, book, perks, banded, held)


def candidates(
    customers: pl.DataFrame,
    history: pl.DataFrame,
    recent: pl.DataFrame,
    ctx: StepContext,
    table: OfferTable,
) -> pl.DataFrame:
    """The stages before stock and budget: each customer's candidate perk, `perk_value`,
    `charged_cost` and `_drop`, computed from that customer's row alone."""
    perks = _perk_frame(table)
    held = None if history.is_empty() else held_perks(history, perks)
    banded = within_band(table, ctx)
    return _candidates(customers, history, recent, ctx, table, perks, banded, held)


def finish(
    settled: pl.DataFrame,
    history: pl.DataFrame,
    recent: pl.DataFrame,
    ctx: StepContext,
    table: OfferTable,
    book: MessageBook,
) -> pl.DataFrame:
    """The stages after stock and budget, over a frame of `candidates` settled: `decide`
    for an engine that keeps each part's candidates while stock and budget are settled over
    all of the parts, so none is worked out twice."""
    perks = _perk_frame(table)
    held = None if history.is_empty() else held_perks(history, perks)
    return _finished(settled, recent, ctx, table, book, perks, within_band(table, ctx), held)


#: the catalog as a frame, once per published table
_perk_frame = per_object(perk_frame)


def _candidates(
    customers: pl.DataFrame,
    history: pl.DataFrame,
    recent: pl.DataFrame,
    ctx: StepContext,
    table: OfferTable,
    perks: pl.DataFrame,
    banded: OfferTable,
    held: HeldPerks | None,
) -> pl.DataFrame:
    return (
        select_profiles(customers, table, ctx.incident)
        .pipe(with_history, history, held, ctx.step)
        .pipe(with_recent_incidents, recent)
        .pipe(with_step_facts, ctx)
        .pipe(with_choice, banded, ctx)
        .pipe(with_candidate_perks, perks, held)
        .pipe(with_rule_limits, table, recent)
        .pipe(with_drops, ctx)
    )


def _finished(
    settled: pl.DataFrame,
    recent: pl.DataFrame,
    ctx: StepContext,
    table: OfferTable,
    book: MessageBook,
    perks: pl.DataFrame,
    banded: OfferTable,
    held: HeldPerks | None,
) -> pl.DataFrame:
    return (
        settled.pipe(with_withheld_odds, banded, perks, held, recent, ctx)
        .pipe(with_outcome, ctx.policy)
        .pipe(with_perk_facts, table, ctx.now)
        .pipe(with_texts, book, ctx.incident.kind, ctx.entitlements)
        .pipe(with_reasons, ctx)
        .pipe(as_record, ctx)
    )


def settle_stock_and_budget(frame: pl.DataFrame, ctx: StepContext) -> pl.DataFrame:
    """Stock per airport and day in customer-id order, then the budget: over all of `frame`."""
    return frame.pipe(drop_out_of_stock, ctx.stock_left).pipe(drop_over_budget, ctx.budget_left)


def with_history(
    frame: pl.DataFrame, history: pl.DataFrame, held: HeldPerks | None, step: int
) -> pl.DataFrame:
    """Without customers already decided at `step` or later: `last_step` (null: nothing
    sent yet in this incident) and `held`, the perks held from it. `held` is None exactly
    when `history` is empty."""
    if held is None:
        n = frame.height
        return frame.hstack(
            [
                constant("last_step", None, pl.Int32(), n),
                constant("held", [], pl.List(pl.String), n),
            ]
        )
    prior = history.group_by("customer_id").agg(last_step=pl.col("step").max())
    return (
        frame.join(prior, on="customer_id", how="left")
        .filter(pl.col("last_step").is_null() | (pl.col("last_step") < step))
        .join(held.ids, on="customer_id", how="left")
        .with_columns(pl.col("held").fill_null([]))
    )


def with_recent_incidents(frame: pl.DataFrame, recent: pl.DataFrame) -> pl.DataFrame:
    """`other_incidents` in the contact window, and `perk_incidents`: those with a perk."""
    if recent.is_empty():
        n = frame.height
        return frame.hstack(
            [
                constant("other_incidents", 0, pl.Int32(), n),
                constant("perk_incidents", 0, pl.UInt32(), n),
            ]
        )
    return frame.join(recent_counts(recent), on="customer_id", how="left").with_columns(
        pl.col("other_incidents").fill_null(0), pl.col("perk_incidents").fill_null(0)
    )


def with_choice(frame: pl.DataFrame, banded: OfferTable, ctx: StepContext) -> pl.DataFrame:
    """`rule_id` and `candidate`: the first rule of the banded table that holds, whose
    perk learning (when on) may swap for one of the rule's alternatives; `choice_p` is the
    probability of that choice, `_learn` and `_set` say how it was made."""
    frame = match(frame, banded).rename({"perk_id": "candidate"})
    hashes = frame["_id_hash"] if "_id_hash" in frame.columns else None
    return choose(frame, banded, ctx.learning, ctx.incident.incident_id, ctx.step, hashes)


def with_texts(
    frame: pl.DataFrame, book: MessageBook, kind: str, owed: Sequence[Mapping[str, Any]] = ()
) -> pl.DataFrame:
    """The message for each row (`text`, `text_language`, `text_shell`), with the perk's
    line where `_given`, the rights line where the law owes something (`owed`: EU 261 Art.
    14(2) wants passengers told their rights in writing), and `_kept_name`: the name
    spliced into the text, if any, and `_name_fit`: whether it was cut or dropped to keep an
    SMS within its segments. `rights` and `_owed`, what the rights line was chosen by, stay
    on for `as_record` to leave out."""
    regimes = ", ".join(sorted({str(e.get("regime", "")) for e in owed} - {""}))
    n = frame.height
    frame = frame.hstack(
        [
            constant("rights", regimes, pl.String(), n),
            constant("_owed", bool(owed), pl.Boolean(), n),
        ]
    )
    rendered = render_texts(frame, book, kind, "message_kind", "_given", "_owed")
    return frame.hstack(  # `rights` and `_owed` go with `as_record`'s selection
        [
            constant("message_book", book.label(kind), pl.String(), n),
            rendered.text.alias("text"),
            rendered.text_language.alias("text_language"),
            rendered.text_shell.alias("text_shell"),
            rendered.first_name.alias("_kept_name"),
            rendered.name_fit.alias("_name_fit"),
        ]
    )


def as_record(frame: pl.DataFrame, ctx: StepContext) -> pl.DataFrame:
    """The decision's columns (`DECISION_COLUMNS`), then those for the ledger alone."""
    made = {
        "entitlements": pl.lit(entitlements_json(ctx)),
        "airport": pl.lit(ctx.incident.facts.origin, dtype=pl.String),
        "channel": pl.col("channel").cast(pl.String),
        "language": pl.col("language").cast(pl.String),
    }
    return frame.select(
        *(made[c].alias(c) if c in made else pl.col(c) for c in DECISION_COLUMNS),
        "reason_id",
        "text_shell",
        pl.col("_kept_name").alias("first_name"),
        "message_book",
    )
