"""Which matched perks are given, and why the others are not.

A candidate perk that is not given carries a short code in `_drop`, checked in the order
of `DROPS`: the first that applies is the one the reasons word (`offers.decide.reasons`).
Stock and budget come last because they depend on who else is still in line: stock goes in
customer-id order, the budget to the most value per cost (`offers.decide.allocation`).
"""

from __future__ import annotations

import polars as pl

from offers.catalog import OfferTable
from offers.decide.allocation import allocate
from offers.decide.choice import option_odds, rule_candidates
from offers.decide.context import StepContext
from offers.decide.perks import HeldPerks, in_stock
from offers.decide.policy import ContactPolicy, holdout_mask

__all__ = [
    "DROPS",
    "drop_out_of_stock",
    "drop_over_budget",
    "with_drops",
    "with_outcome",
    "with_withheld_odds",
]

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
    capped = _capped(policy)
    limited = pl.col("_limit").is_not_null() & (pl.col("_uses") >= pl.col("_limit"))
    held_out = pl.lit(holdout) & _HAS_CANDIDATE
    frame = frame.with_columns(  # one query: each plans anew, most of a small incident's cost
        holdout=held_out,
        _certain=_HAS_CANDIDATE & (_ALREADY | _NO_GAIN.fill_null(False) | capped | limited),
        _drop=pl.when(~_HAS_CANDIDATE)
        .then(pl.lit(None, pl.String))
        .when(_ALREADY)
        .then(pl.lit("already"))
        .when(_NO_GAIN)
        .then(pl.lit("no_gain"))
        .when(held_out)
        .then(pl.lit("holdout"))
        .when(capped)
        .then(pl.lit("cap"))
        .when(limited)
        .then(pl.lit("limit")),
    )
    return frame.with_columns(
        charged_cost=pl.when(_OFFERED).then(
            (pl.col("perk_cost") - pl.col("held_cost").fill_null(0.0)).clip(lower_bound=0.0)
        ),
    )


def _capped(policy: ContactPolicy) -> pl.Expr:
    """The contact cap: perks in `max_perks` other incidents, none yet from this one."""
    return (pl.col("held").list.len() == 0) & (pl.col("perk_incidents") >= policy.max_perks)


def with_withheld_odds(
    frame: pl.DataFrame,
    banded: OfferTable,
    perks: pl.DataFrame,
    held: HeldPerks | None,
    recent: pl.DataFrame,
    ctx: StepContext,
) -> pl.DataFrame:
    """`_p_withheld`: the probability that the choice, whichever learning makes, is one
    the customer cannot be given (already held, no gain, the contact cap, the rule's
    limit). For a rule with one perk that is 0 or 1 (`_certain`); among a rule's
    candidates (`_k`, `_best` from offers.decide.choice) it is the sum of the odds of
    those that would be withheld, worked out for every candidate of the customers who end
    without a perk (the only ones whose propensity needs it)."""
    frame = frame.with_columns(_p_withheld=pl.col("_certain").cast(pl.Float64))
    needed = pl.col("_k").is_not_null() & pl.col("_drop").is_not_null()
    if ctx.learning is None or frame.select(needed.any()).item() is not True:
        return frame
    share = ctx.learning.config.share
    long = (
        frame.with_row_index("_r")
        .filter(needed)
        .select("_r", "customer_id", "rule_id", "held", "perk_incidents", "_limit", "_k", "_best")
        .join(rule_candidates(banded), on="rule_id")
        .join(
            perks.select(perk="perk_id", _kind="perk_kind", _value="perk_value"),
            on="perk",
            how="left",
        )
    )
    if held is not None:
        best = held.best.select("customer_id", _kind="perk_kind", _held_value="held_value")
        long = long.join(best, on=["customer_id", "_kind"], how="left")
    else:
        long = long.with_columns(_held_value=pl.lit(None, pl.Float64))
    uses = (
        recent.drop_nulls("perk_id")
        .group_by("customer_id", "perk_id")
        .agg(_used=pl.col("incident_id").n_unique())
        .rename({"perk_id": "perk"})
    )
    long = long.join(uses, on=["customer_id", "perk"], how="left")
    withheld = (
        pl.col("held").list.contains(pl.col("perk"))
        | (pl.col("_held_value").is_not_null() & (pl.col("_value") <= pl.col("_held_value")))
        | _capped(ctx.policy)
        | (pl.col("_limit").is_not_null() & (pl.col("_used").fill_null(0) >= pl.col("_limit")))
    )
    q = option_odds(pl.col("_k"), pl.col("_best"), pl.col("_opt"), share)
    odds = long.group_by("_r").agg(  # every candidate withheld: exactly 1, not a sum of odds
        _odds=pl.when(withheld.all()).then(pl.lit(1.0)).otherwise((q * withheld).sum())
    )
    return (
        frame.with_row_index("_r")
        .join(odds, on="_r", how="left", maintain_order="left")
        .with_columns(_p_withheld=pl.coalesce("_odds", "_p_withheld"))
        .drop("_r", "_odds")
    )


def drop_out_of_stock(frame: pl.DataFrame, stock_left: dict[str, int]) -> pl.DataFrame:
    """`_drop` "stock" where the airport ran out of the offered perk today; only perks
    still offered keep a `charged_cost`."""
    if not stock_left:  # nothing is stocked: nothing to drop
        return frame
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
    if keep.all():  # no budget, or every perk fits
        return frame
    return frame.with_columns(
        _drop=pl.when(_OFFERED & pl.col("_drop").is_null() & ~keep)
        .then(pl.lit("budget"))
        .otherwise(pl.col("_drop"))
    )


def with_outcome(frame: pl.DataFrame, policy: ContactPolicy) -> pl.DataFrame:
    """The perk given (`perk_id`, `_given`), its `charged_cost`, the held perk it
    `replaces`, the `propensity` of the choice as logged for learning, and `needs_human`.

    The propensity is the probability of exactly what was issued under the policy that
    issued it: a perk, `(1 - holdout_share) * choice_p`; no perk where no rule matched, 1;
    no perk otherwise, `holdout_share` plus the rest times the odds that the choice was
    one the customer could not get (`_p_withheld`: cap, limit, held; 1 for a capped
    customer) or, for the choice made, one stock or budget stopped.
    """
    given = _OFFERED
    h = policy.holdout_share
    spent = pl.col("_drop").is_in(["stock", "budget"]).fill_null(False).cast(pl.Float64)
    return frame.with_columns(
        perk_id=pl.when(given).then(pl.col("candidate")),
        charged_cost=pl.when(given).then(pl.col("charged_cost")),
        replaces=pl.when(given).then(pl.col("held_id")),
        propensity=pl.when(given)
        .then((1.0 - h) * pl.col("choice_p"))
        .when(~_HAS_CANDIDATE)
        .then(pl.lit(1.0))
        .otherwise(
            (h + (1.0 - h) * (pl.col("_p_withheld") + pl.col("choice_p") * spent)).clip(
                upper_bound=1.0
            )
        ),
        needs_human=pl.col("other_incidents") > 0,
        _given=given,
    )
