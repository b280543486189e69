"""What a draft offer table would have done: off-policy estimates from the logged decisions.

Each logged decision is replayed under the draft's rules (first hit; a perk the draft gave
the same customer earlier in the incident is not given again, as the engine does; no
holdout, caps or budgets: those need live state and a replay must not touch it), which
names the perk the draft would have given. Acceptance (share of decisions redeemed) and
cost of redeemed perks per decision are then estimated from what the logs saw, weighting
each decision by 1 / its logged propensity where the draft agrees with the logged choice:

- IPS: mean of w * r; unbiased, noisy.
- SNIPS: sum(w * r) / sum(w); a little bias, much less noise.
- DR: mean of q(x, draft) + w * (r - q(x, logged)), q the Beta(1, 1) posterior mean of the
  segment x perk; unbiased if either the propensities or q are right.

Intervals are the wider of a normal approximation (IPS and DR: the standard error of a
mean; SNIPS: the delta method) and a Wilson score interval on the weights' effective
sample size, and never leave what the quantity can be (offers.learning.intervals); below
`MIN_EFFECTIVE` a group says "too little data". Where the draft gives a segment a perk the
logs never gave that segment, there is no support: the estimate is left empty and the
report says so. A decision where the logs could give no perk whatever the choice (logged
with probability 1: the contact cap, a limit, every candidate held) gives none under the
draft either: a table does not change the contact policy.
Against the live table, the change is the mean of the per-decision difference of the two
DR terms over the same logged decisions (a paired estimate: where both tables give the same
perk the difference is exactly 0), with a normal interval.
Reading is one read-only transaction; nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec
import polars as pl

from offers.catalog import OfferTable, TableError, personas_of, resolve
from offers.learning.intervals import MIN_EFFECTIVE, bounded, effective_size
from offers.learning.outcomes import load_outcomes
from offers.learning.replay import incident_facts, replay
from offers.ledger import Ledger

__all__ = [
    "METHOD",
    "Estimate",
    "GroupEstimate",
    "Simulation",
    "Unsupported",
    "estimate",
    "parse_since",
    "replay",
    "simulate",
]

METHOD = (
    "IPS, self-normalized IPS and doubly robust estimates over logged propensities; 95% "
    "intervals: the wider of the normal approximation (delta method for SNIPS) and a Wilson "
    f"interval on the weights' effective sample size; under {MIN_EFFECTIVE:.0f} effective "
    "decisions: too little data"
)
Estimator = Literal["ips", "snips", "dr"]
Z95 = 1.959964


class Estimate(msgspec.Struct, frozen=True, kw_only=True):
    """A point estimate and its interval; all null when there is no support."""

    value: float | None
    low: float | None
    high: float | None


class GroupEstimate(msgspec.Struct, frozen=True, kw_only=True):
    """Estimates for one segment, or for everything (`segment` null).

    `acceptance` is redemptions per decision, `cost` the cost of redeemed perks per
    decision; `issued_cost` is exact (the draft's perks' costs, no estimate needed).
    `matched` counts decisions where the logs made the draft's choice, `effective_size`
    what their weights are worth in plain decisions (Kish), `mean_weight` the weights'
    mean (near 1 where the logs support the draft); `too_little_data` below
    `MIN_EFFECTIVE` effective decisions.
    """

    segment: str | None
    decisions: int
    matched: int
    supported: bool
    effective_size: float
    mean_weight: float
    too_little_data: bool
    logged_acceptance: float
    logged_cost: float
    issued_cost: float
    acceptance: dict[Estimator, Estimate]
    cost: dict[Estimator, Estimate]
    change_acceptance: Estimate = Estimate(value=None, low=None, high=None)
    change_cost: Estimate = Estimate(value=None, low=None, high=None)
    unchanged: bool = False


class Unsupported(msgspec.Struct, frozen=True, kw_only=True):
    """The draft gives `perk_id` to `segment` in `decisions` cases; the logs never did."""

    segment: str | None
    perk_id: str
    decisions: int


class Simulation(msgspec.Struct, frozen=True, kw_only=True):
    """A draft's estimates; `against` names the live table the changes are measured from
    (null: no live table, no change shown); `currency` is the perks' currency."""

    table: str
    against: str | None = None
    currency: str = "EUR"
    since: datetime
    decisions: int
    method: str
    total: GroupEstimate
    segments: list[GroupEstimate]
    no_support: list[Unsupported]


_SINCE = re.compile(r"^(\d{1,5})([dhw])$")


def parse_since(text: str) -> timedelta:
    """`90d`, `12w` or `36h` as a time span."""
    found = _SINCE.match(text.strip())
    if found is None:
        raise ValueError(f"since: {text!r} is not a span such as 90d, 12w or 36h")
    n, unit = int(found[1]), found[2]
    return (
        timedelta(days=n)
        if unit == "d"
        else timedelta(weeks=n)
        if unit == "w"
        else timedelta(hours=n)
    )


def _interval(value: pl.Expr, se: pl.Expr, z: float, name: str) -> list[pl.Expr]:
    return [
        value.alias(f"{name}_value"),
        (value - z * se).alias(f"{name}_low"),
        (value + z * se).alias(f"{name}_high"),
    ]


def _aggs(z: float, live: bool) -> list[pl.Expr]:
    """Per group: counts, exact costs, and the three estimators for acceptance and cost."""
    n, w = pl.len(), pl.col("_w")
    out = [
        n.alias("decisions"),
        (w > 0).sum().alias("matched"),
        pl.col("_supported").all().alias("supported"),
        pl.col("_r").mean().alias("logged_acceptance"),
        pl.col("_y").mean().alias("logged_cost"),
        pl.col("target_cost").fill_null(0.0).sum().alias("issued_cost"),
        w.sum().alias("sum_w"),
        (w**2).sum().alias("sum_w2"),
        w.mean().alias("mean_weight"),
        pl.max_horizontal(pl.col("perk_cost").max(), pl.col("target_cost").max())
        .fill_null(0.0)
        .alias("cost_top"),
    ]
    for metric in ("r", "y"):
        ips, dr = pl.col(f"_ips_{metric}"), pl.col(f"_dr_{metric}")
        snips = (w * pl.col(f"_{metric}")).sum() / w.sum()
        snips_se = ((w**2) * (pl.col(f"_{metric}") - snips) ** 2).sum().sqrt() / w.sum()
        out += _interval(ips.mean(), ips.std() / n.sqrt(), z, f"{metric}_ips")
        out += _interval(snips, snips_se, z, f"{metric}_snips")
        out += _interval(dr.mean(), dr.std() / n.sqrt(), z, f"{metric}_dr")
        if live:
            d = pl.col(f"_d_{metric}")
            out += _interval(d.mean(), d.std().fill_null(0.0) / n.sqrt(), z, f"{metric}_change")
    if live:
        out.append(pl.col("target").eq_missing(pl.col("live_target")).all().alias("unchanged"))
        out.append(pl.col("_live_ok").all().alias("live_supported"))
    return out


def _scored(replayed: pl.DataFrame) -> pl.DataFrame:
    """Weights, rewards and the per-decision terms of each estimator."""
    q = (
        replayed.filter(pl.col("perk_id").is_not_null())
        .group_by("segment", "perk_id")
        .agg(_q=(pl.col("redeemed").sum() + 1) / (pl.len() + 2))
    )
    target_q = q.rename({"perk_id": "target", "_q": "_q_target"})
    scored = (
        replayed.join(q, on=["segment", "perk_id"], how="left", nulls_equal=True)
        .join(target_q, on=["segment", "target"], how="left", nulls_equal=True)
        .with_columns(
            _supported=pl.col("target").is_null() | pl.col("_q_target").is_not_null(),
            _w=pl.col("perk_id").eq_missing(pl.col("target")).cast(pl.Float64)
            / pl.col("propensity"),
            _r=pl.col("redeemed").cast(pl.Float64),
            _q=pl.col("_q").fill_null(0.0),
            _q_target=pl.col("_q_target").fill_null(0.0),
        )
        .with_columns(_y=pl.col("_r") * pl.col("perk_cost").fill_null(0.0))
        .with_columns(
            _ips_r=pl.col("_w") * pl.col("_r"),
            _ips_y=pl.col("_w") * pl.col("_y"),
            _dr_r=pl.col("_q_target") + pl.col("_w") * (pl.col("_r") - pl.col("_q")),
            _dr_y=pl.col("_q_target") * pl.col("target_cost").fill_null(0.0)
            + pl.col("_w") * (pl.col("_y") - pl.col("_q") * pl.col("perk_cost").fill_null(0.0)),
        )
    )
    if "live_target" not in replayed.columns:
        return scored
    # the same DR terms for the live table's choice; the change is their difference
    live_q = q.rename({"perk_id": "live_target", "_q": "_q_live"})
    w_live = pl.col("perk_id").eq_missing(pl.col("live_target")).cast(pl.Float64) / pl.col(
        "propensity"
    )
    own_cost = pl.col("perk_cost").fill_null(0.0)
    return (
        scored.join(live_q, on=["segment", "live_target"], how="left", nulls_equal=True)
        .with_columns(_live_ok=pl.col("live_target").is_null() | pl.col("_q_live").is_not_null())
        .with_columns(_q_live=pl.col("_q_live").fill_null(0.0))
        .with_columns(
            _d_r=pl.col("_dr_r") - (pl.col("_q_live") + w_live * (pl.col("_r") - pl.col("_q"))),
            _d_y=pl.col("_dr_y")
            - (
                pl.col("_q_live") * pl.col("live_target_cost").fill_null(0.0)
                + w_live * (pl.col("_y") - pl.col("_q") * own_cost)
            ),
        )
    )


def _change(row: dict[str, Any], name: str, ok: bool) -> Estimate:
    """The paired difference draft - live, or nothing where either lacks support."""
    value = row.get(f"{name}_value")
    if not ok or value is None or row.get(f"{name}_low") is None:
        return Estimate(value=None, low=None, high=None)
    return Estimate(value=value, low=row[f"{name}_low"], high=row[f"{name}_high"])


def _group(row: dict[str, Any], segment: str | None, z: float) -> GroupEstimate:
    ok = bool(row["supported"])
    effective = effective_size(row["sum_w"] or 0.0, row["sum_w2"] or 0.0)

    def est(name: str) -> Estimate:
        top = 1.0 if name.startswith("r_") else float(row["cost_top"])
        found = bounded(
            row[f"{name}_value"], row[f"{name}_low"], row[f"{name}_high"], effective, z, top
        )
        if not ok or found is None:
            return Estimate(value=None, low=None, high=None)
        return Estimate(value=found[0], low=found[1], high=found[2])

    estimators: tuple[Estimator, ...] = ("ips", "snips", "dr")
    both = ok and bool(row.get("live_supported")) and effective >= MIN_EFFECTIVE
    return GroupEstimate(
        segment=segment,
        decisions=int(row["decisions"]),
        matched=int(row["matched"]),
        supported=ok,
        effective_size=effective,
        mean_weight=float(row["mean_weight"] or 0.0),
        too_little_data=effective < MIN_EFFECTIVE,
        logged_acceptance=float(row["logged_acceptance"] or 0.0),
        logged_cost=float(row["logged_cost"] or 0.0),
        issued_cost=float(row["issued_cost"] or 0.0),
        acceptance={e: est(f"r_{e}") for e in estimators},
        cost={e: est(f"y_{e}") for e in estimators},
        change_acceptance=_change(row, "r_change", both),
        change_cost=_change(row, "y_change", both),
        unchanged=bool(row.get("unchanged", False)),
    )


def estimate(
    replayed: pl.DataFrame, z: float = Z95
) -> tuple[GroupEstimate, list[GroupEstimate], list[Unsupported]]:
    """(total, per segment, no support) from a replay frame.

    `replayed` has per logged decision: `segment`, `perk_id` (logged, null = none),
    `propensity` (of the logged choice), `redeemed`, `perk_cost` (logged perk), and the
    draft's `target` perk with its `target_cost`; with `live_target` and
    `live_target_cost` (the live table's choice) each group also gets the change.
    """
    scored = _scored(replayed)
    live = "live_target" in replayed.columns
    total = scored.select(_aggs(z, live)).row(0, named=True)
    by_segment = scored.group_by("segment").agg(_aggs(z, live)).sort("segment", nulls_last=True)
    missing = (
        scored.filter(~pl.col("_supported"))
        .group_by("segment", "target")
        .agg(decisions=pl.len())
        .sort("segment", "target")
    )
    return (
        _group(total, None, z),
        [_group(r, r["segment"], z) for r in by_segment.iter_rows(named=True)],
        [
            Unsupported(segment=r["segment"], perk_id=r["target"], decisions=r["decisions"])
            for r in missing.iter_rows(named=True)
        ],
    )


def _resolved(table: OfferTable, traits: Mapping[str, Mapping[str, Any]] | None) -> OfferTable:
    """`table` with its persona conditions as the segments they match."""
    if traits is not None:
        return resolve(table, personas_of(table, traits))
    if any("persona" in r.when for r in table.rules):
        raise TableError(
            f"table {table.name}: persona conditions need the served segmentation to replay"
        )
    return table


def simulate(
    ledger: Ledger,
    draft: OfferTable,
    now: datetime,
    span: timedelta,
    profiles: Callable[[Sequence[str]], pl.DataFrame] | None = None,
    z: float = Z95,
    traits: Mapping[str, Mapping[str, Any]] | None = None,
    live: OfferTable | None = None,
) -> Simulation:
    """Replay the decisions of the last `span` under `draft` (and `live`, to measure the
    change against it); read-only. Persona conditions are resolved with the served
    segmentation's `traits`."""
    draft = _resolved(draft, traits)
    live = None if live is None else _resolved(live, traits)
    since = now - span
    outcomes = load_outcomes(ledger, since)
    facts = (
        incident_facts(ledger, outcomes["incident_id"].unique().to_list())
        if outcomes.height
        else None
    )
    tables = [draft] if live is None else [draft, live]
    needed = {c for t in tables for r in t.rules for c in r.when}
    people = None
    if profiles is not None and needed - {"segment", "step"}:
        people = profiles(outcomes["customer_id"].unique().to_list())
    replayed = replay(outcomes, draft, facts, people)
    if live is not None:
        theirs = replay(outcomes, live, facts, people)
        replayed = replayed.with_columns(
            live_target=theirs["target"], live_target_cost=theirs["target_cost"]
        )
    total, segments, missing = estimate(replayed, z)
    currencies = {p.currency for p in draft.perks}
    return Simulation(
        table=draft.name,
        against=None if live is None else live.name,
        currency=currencies.pop() if len(currencies) == 1 else "EUR",
        since=since,
        decisions=outcomes.height,
        method=METHOD,
        total=total,
        segments=segments,
        no_support=missing,
    )
