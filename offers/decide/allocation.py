"""Fit perks into what is left of an incident's budget, deterministically and explained.

When the perks chosen for a step cost more than the budget left, the ones that bring the
most value per unit of cost are kept: a greedy pass in order of value density (ties by
customer id, so the same input always gives the same answer), then a second pass that
fills the remaining slack with the cheapest perks that still fit. Both passes are a sort
and a cumulative sum over the whole incident.
"""

from __future__ import annotations

import polars as pl


def allocate(frame: pl.DataFrame, budget_left: float | None) -> pl.Series:
    """A boolean per row: keep the perk under the budget.

    `frame` has `customer_id`, `perk_value` and `charged_cost` (null where no perk).
    Rows without a perk are kept (there is nothing to cut).
    """
    if budget_left is None or frame["charged_cost"].sum() <= budget_left:  # sum skips nulls
        return pl.Series("keep", [True], pl.Boolean).new_from_index(0, frame.height)
    has_perk = frame["charged_cost"].is_not_null()
    ranked = (
        frame.select("customer_id", "perk_value", "charged_cost")
        .with_row_index("_row")
        .filter(pl.col("charged_cost").is_not_null())
        .with_columns(density=pl.col("perk_value") / pl.col("charged_cost").clip(lower_bound=1e-9))
        .sort(["density", "customer_id"], descending=[True, False])
        .with_columns(first=pl.col("charged_cost").cum_sum() <= budget_left)
    )
    slack = budget_left - float(ranked.filter("first")["charged_cost"].sum())
    second = (
        ranked.filter(~pl.col("first"))
        .sort(["charged_cost", "customer_id"])
        .with_columns(fill=pl.col("charged_cost").cum_sum() <= slack)
        .filter("fill")
    )
    kept = pl.concat([ranked.filter("first")["_row"], second["_row"]])
    rows = pl.Series("_row", range(frame.height), dtype=pl.UInt32)
    return (rows.is_in(kept.implode()) | ~has_perk).alias("keep")
