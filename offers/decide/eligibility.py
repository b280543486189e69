"""Which matched perks are given, and why the others are not.

A candidate perk that is not given carries a short code in `_drop`, checked in the order
of `DROPS`: the first that applies is the one the reasons word (`offers.decide.reasons`).
Stock and budget come last because they depend on who else is still in line: stock goes in
customer-id order, the budget to the most value per cost (`offers.decide.allocation`).
"""

from __future__ import annotations

import polars as pl

from offers.decide.allocation import allocate
from offers.decide.context import StepContext
from offers.decide.perks import in_stock
from offers.decide.policy import ContactPolicy, holdout_mask

__all__ = ["DROPS", "drop_out_of_stock", "drop_over_budget", "with_drops", "with_outcome"]

#: Why a candidate perk was not given, as a short code, in the order they are checked.
DROPS = ("already", "no_gain", "holdout", "cap", "limit", "stock", "budget")

_HAS_CANDIDATE = pl.col("candidate").is_not_null()
#: The customer already holds this very perk from this incident.
_ALREADY = pl.col("held").list.contains(pl.col("candidate"))
#: A perk of the same kind held from this incident is worth as much or more.
_NO_GAIN = pl.col("held_value").is_not_null() & (pl.col("perk_value") <= pl.col("held_value"))
#: A candidate no earlier check dropped (read again after each check adds its drops).
_OFFERED = _HAS_CANDIDATE & pl.col("_drop").is_null()


def with_drops(frame: pl.DataFrame, ctx: StepContext) -> pl.DataFrame:
    """`holdout`, `_drop` (already, no_gain, holdout, cap or limit; null where offered or
    nothing matched) and `charged_cost`: what an offered perk costs net of the one it
    upgrades. `frame` has the candidate's and the held perk's columns and the rule limits."""
    policy = ctx.policy
    holdout = holdout_mask(
        frame["customer_id"],
        ctx.incident.incident_id,
        policy.holdout_share,
        frame["_id_hash"] if "_id_hash" in frame.columns else None,
    )
    capped = (pl.col("held").list.len() == 0) & (pl.col("perk_incidents") >= policy.max_perks)
    frame = frame.with_columns(holdout=holdout & _HAS_CANDIDATE).with_columns(
        _drop=pl.when(~_HAS_CANDIDATE)
        .then(pl.lit(None, pl.String))
        .when(_ALREADY)
        .then(pl.lit("already"))
        .when(_NO_GAIN)
        .then(pl.lit("no_gain"))
        .when(pl.col("holdout"))
        .then(pl.lit("holdout"))
        .when(capped)
        .then(pl.lit("cap"))
        .when(pl.col("_limit").is_not_null() & (pl.col("_uses") >= pl.col("_limit")))
        .then(pl.lit("limit"))
    )
    return frame.with_columns(
        charged_cost=pl.when(_OFFERED).then(
            (pl.col("perk_cost") - pl.col("held_cost").fill_null(0.0)).clip(lower_bound=0.0)
        ),
    )


def drop_out_of_stock(frame: pl.DataFrame, stock_left: dict[str, int]) -> pl.DataFrame:
    """`_drop` "stock" where the airport ran out of the offered perk today; only perks
    still offered keep a `charged_cost`."""
    stocked = in_stock(frame, stock_left)
    frame = frame.with_columns(
        _drop=pl.when(_OFFERED & ~stocked).then(pl.lit("stock")).otherwise(pl.col("_drop"))
    )
    return frame.with_columns(
        charged_cost=pl.when(pl.col("_drop").is_null()).then(pl.col("charged_cost"))
    )


def drop_over_budget(frame: pl.DataFrame, budget_left: float | None) -> pl.DataFrame:
    """`_drop` "budget" for the offered perks that do not fit in what is left of the
    incident's budget (None: no budget)."""
    keep = allocate(frame, budget_left)
    return frame.with_columns(
        _drop=pl.when(_OFFERED & pl.col("_drop").is_null() & ~keep)
        .then(pl.lit("budget"))
        .otherwise(pl.col("_drop"))
    )


def with_outcome(frame: pl.DataFrame, policy: ContactPolicy) -> pl.DataFrame:
    """The perk given (`perk_id`, `_given`), its `charged_cost`, the held perk it
    `replaces`, the `propensity` of the choice as logged for learning, and `needs_human`.

    A candidate dropped as already held or without gain was never a choice (propensity
    1); a holdout was one with probability `holdout_share`, anyone else with the rest
    times learning's `choice_p`.
    """
    given = _OFFERED
    return frame.with_columns(
        perk_id=pl.when(given).then(pl.col("candidate")),
        charged_cost=pl.when(given).then(pl.col("charged_cost")),
        replaces=pl.when(given).then(pl.col("held_id")),
        propensity=pl.when(_HAS_CANDIDATE & ~_ALREADY & ~_NO_GAIN)
        .then(
            pl.when(pl.col("holdout"))
            .then(pl.lit(policy.holdout_share))
            .otherwise(pl.lit(1.0 - policy.holdout_share) * pl.col("choice_p"))
        )
        .otherwise(pl.lit(1.0)),
        needs_human=pl.col("other_incidents") > 0,
        _given=given,
    )
