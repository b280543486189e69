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
Reading is one read-only transaction; nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec
import polars as pl
import sqlalchemy as sa

from offers.catalog import OfferTable, TableError, match, perk_frame, personas_of, resolve
from offers.learning.intervals import MIN_EFFECTIVE, bounded, effective_size
from offers.learning.outcomes import load_outcomes
from offers.ledger import Ledger
from offers.ledger.schema import incidents

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


class Unsupported(msgspec.Struct, frozen=True, kw_only=True):
    """The draft gives `perk_id` to `segment` in `decisions` cases; the logs never did."""

    segment: str | None
    perk_id: str
    decisions: int


class Simulation(msgspec.Struct, frozen=True, kw_only=True):
    table: str
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


def _aggs(z: float) -> list[pl.Expr]:
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
    return out


def _scored(replayed: pl.DataFrame) -> pl.DataFrame:
    """Weights, rewards and the per-decision terms of each estimator."""
    q = (
        replayed.filter(pl.col("perk_id").is_not_null())
        .group_by("segment", "perk_id")
        .agg(_q=(pl.col("redeemed").sum() + 1) / (pl.len() + 2))
    )
    target_q = q.rename({"perk_id": "target", "_q": "_q_target"})
    return (
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
    )


def estimate(
    replayed: pl.DataFrame, z: float = Z95
) -> tuple[GroupEstimate, list[GroupEstimate], list[Unsupported]]:
    """(total, per segment, no support) from a replay frame.

    `replayed` has per logged decision: `segment`, `perk_id` (logged, null = none),
    `propensity` (of the logged choice), `redeemed`, `perk_cost` (logged perk), and the
    draft's `target` perk with its `target_cost`.
    """
    scored = _scored(replayed)
    total = scored.select(_aggs(z)).row(0, named=True)
    by_segment = scored.group_by("segment").agg(_aggs(z)).sort("segment", nulls_last=True)
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


def _facts(ledger: Ledger, incident_ids: list[str]) -> pl.DataFrame:
    """Stored incident facts as columns, one row per incident (rules may name them)."""
    query = sa.select(incidents.c.incident_id, incidents.c.kind, incidents.c.facts).where(
        incidents.c.incident_id.in_(incident_ids)
    )
    with ledger.reading() as tx:
        rows = [
            {
                **{k: v for k, v in (facts or {}).items() if not isinstance(v, (dict, list))},
                "incident_id": incident_id,
                "kind": kind,
            }
            for incident_id, kind, facts in tx.conn.execute(query)
        ]
    frame = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    if "origin" in frame.columns:
        frame = frame.with_columns(airport=pl.col("origin"))
    return frame


def replay(
    outcomes: pl.DataFrame,
    draft: OfferTable,
    facts: pl.DataFrame | None = None,
    profiles: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Logged decisions with the draft's `target` perk and `target_cost` added."""
    needed = {c for r in draft.rules for c in r.when}
    context = outcomes.select("incident_id", "customer_id", "segment", "step")
    if facts is not None and facts.width:
        extra = [c for c in facts.columns if c not in context.columns or c == "incident_id"]
        context = context.join(facts.select(extra), on="incident_id", how="left")
    wanted = sorted(needed - set(context.columns))
    if wanted and profiles is not None:
        have = [c for c in wanted if c in profiles.columns]
        context = context.join(profiles.select("customer_id", *have), on="customer_id", how="left")
    missing = needed - set(context.columns)
    if missing:
        raise TableError(f"table {draft.name}: cannot replay conditions on {sorted(missing)}")
    chosen = match(context, draft).select(target="perk_id")
    perks = perk_frame(draft).select(
        target="perk_id", target_cost="perk_cost", _kind="perk_kind", _value="perk_value"
    )
    replayed = pl.concat([outcomes, chosen], how="horizontal").join(
        perks, on="target", how="left", maintain_order="left"
    )
    # As the engine would: no perk where the draft already gave this customer, earlier in
    # the incident, a perk of the same kind worth as much (the same perk included).
    held = (
        pl.col("_value")
        .cum_max()
        .shift(1)
        .over("incident_id", "customer_id", "_kind", order_by="step")
    )
    # the logs could give this customer no perk whatever they chose: nor can the draft
    withheld = (
        pl.col("perk_id").is_null()
        & pl.col("rule_id").is_not_null()
        & (pl.col("propensity") >= 1.0)
    )
    return (
        replayed.with_columns(_held=held)
        .with_columns(
            _drop=(pl.col("_held").is_not_null() & (pl.col("_held") >= pl.col("_value"))) | withheld
        )
        .with_columns(
            target=pl.when(~pl.col("_drop")).then(pl.col("target")),
            target_cost=pl.when(~pl.col("_drop")).then(pl.col("target_cost")),
        )
        .drop("_kind", "_value", "_held", "_drop")
    )


def simulate(
    ledger: Ledger,
    draft: OfferTable,
    now: datetime,
    span: timedelta,
    profiles: Callable[[Sequence[str]], pl.DataFrame] | None = None,
    z: float = Z95,
    traits: Mapping[str, Mapping[str, Any]] | None = None,
) -> Simulation:
    """Replay the decisions of the last `span` under `draft`; read-only. A draft's persona
    conditions are resolved with the served segmentation's `traits`."""
    if traits is not None:
        draft = resolve(draft, personas_of(draft, traits))
    elif any("persona" in r.when for r in draft.rules):
        raise TableError(
            f"table {draft.name}: persona conditions need the served segmentation to replay"
        )
    since = now - span
    outcomes = load_outcomes(ledger, since)
    facts = _facts(ledger, outcomes["incident_id"].unique().to_list()) if outcomes.height else None
    needed = {c for r in draft.rules for c in r.when}
    people = None
    if profiles is not None and needed - {"segment", "step"}:
        people = profiles(outcomes["customer_id"].unique().to_list())
    total, segments, missing = estimate(replay(outcomes, draft, facts, people), z)
    return Simulation(
        table=draft.name,
        since=since,
        decisions=outcomes.height,
        method=METHOD,
        total=total,
        segments=segments,
        no_support=missing,
    )
