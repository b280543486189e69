"""Learning's choice among interchangeable perks: one stage of the engine.

The engine is handed what learning knows as data (`Learning`: a frame of posteriors that
follows `POSTERIOR_SCHEMA` and the exploration bounds); `offers.learning` reads it from the
ledger's feedback. Nothing here touches a database.

Interchangeable perks: rules of the same priority (and the same fallback flag) whose perks'
values lie within `value_band` of the first-hit perk's value, and that match the same
customer. "Same incident, same floor": learning changes the perk's type, never its value
band. Among those, a `share` of customers (chosen by a stable hash per incident) is
Thompson-sampled; everyone else gets the perk with the best posterior mean among perks with
at least `min_events` delivered decisions, else marketing's first hit. Until the segment has
`min_events` delivered decisions over its candidates, nothing changes. The logged
probability of the choice is `(1 - share) * [choice is the best] + share * P_TS(choice)`,
with P_TS estimated by Monte Carlo per (segment, candidate set), not per customer.

An explorer's perk is drawn from P_TS itself with a uniform number hashed from the
customer, incident and step (the same distribution as drawing from the posteriors), and
each (segment, candidate set) has its own random stream: a customer's choice and its
logged probability do not depend on who else is decided in the same call, so a preview
of one customer and an update of thousands agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
import numpy as np
import polars as pl

from offers.catalog import OfferTable, Rule, ordered_rules, rule_expr
from segmentation.ids import fnv1a, unit_interval

__all__ = [
    "DEFAULT_CONFIG",
    "POSTERIOR_SCHEMA",
    "ExploreConfig",
    "Learning",
    "choose",
    "interchangeable",
]


class ExploreConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How far learning may move decisions away from the table's first hit."""

    share: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.2
    min_events: Annotated[int, msgspec.Meta(ge=1)] = 20
    value_band: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.25
    draws: Annotated[int, msgspec.Meta(ge=50, le=100_000)] = 400
    prior_alpha: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    prior_beta: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    window_days: Annotated[int, msgspec.Meta(ge=1)] = 90


DEFAULT_CONFIG = ExploreConfig()


@dataclass(frozen=True)
class Learning:
    """Posteriors (see `POSTERIOR_SCHEMA`) and the exploration bounds for one step.

    `seed` makes Thompson draws reproducible (tests, demo); None draws fresh entropy.
    """

    posteriors: pl.DataFrame
    config: ExploreConfig = field(default_factory=ExploreConfig)
    seed: int | None = None


POSTERIOR_SCHEMA: dict[str, Any] = {
    "segment": pl.String,
    "perk_id": pl.String,
    "delivered": pl.UInt32,
    "redeemed": pl.UInt32,
    "alpha": pl.Float64,
    "beta": pl.Float64,
    "acceptance": pl.Float64,
    "ratings": pl.UInt32,
    "rating_mean": pl.Float64,
    "complaints": pl.UInt32,
}


def _alternatives(table: OfferTable, band: float) -> dict[str, list[Rule]]:
    """Per rule id: the other rules whose perks are interchangeable with its perk."""
    value = {p.id: p.value for p in table.perks}
    rules = ordered_rules(table)
    out: dict[str, list[Rule]] = {}
    for rule in rules:
        seen = {rule.perk}
        for other in rules:
            if (
                other.perk not in seen
                and other.priority == rule.priority
                and other.fallback == rule.fallback
                and abs(value[other.perk] - value[rule.perk]) <= band * value[rule.perk]
            ):
                seen.add(other.perk)
                out.setdefault(rule.id, []).append(other)
    return out


def interchangeable(frame: pl.DataFrame, table: OfferTable, band: float) -> pl.DataFrame:
    """Add `_options`: "perk rule" texts for the first hit then each interchangeable rule
    that also holds for the row (one expression per pair of rules, never per customer)."""
    first = pl.format("{} {}", "candidate", "rule_id")
    exprs: list[pl.Expr] = [pl.when(pl.col("candidate").is_not_null()).then(first)]
    for rule_id, others in _alternatives(table, band).items():
        for other in others:
            exprs.append(
                pl.when((pl.col("rule_id") == rule_id) & rule_expr(other)).then(
                    pl.lit(f"{other.perk} {other.id}")
                )
            )
    return frame.with_columns(_options=pl.concat_list(exprs).list.drop_nulls())


def _ts_probabilities(
    groups: pl.DataFrame, draws: int, rng: Callable[[str], np.random.Generator]
) -> pl.DataFrame:
    """P(Thompson sampling picks each perk) per (segment, _set), by Monte Carlo.

    Each (segment, _set) draws from `rng` of its own name, so its estimate is the same
    whichever other groups are estimated with it. Laplace-smoothed, so a perk that can win
    is never logged with probability zero.
    """
    groups = groups.sort("segment", "_set", maintain_order=True)
    samples = []
    for (segment, perks), group in groups.group_by("segment", "_set", maintain_order=True):
        alpha = np.repeat(group["alpha"].to_numpy(), draws)
        beta = np.repeat(group["beta"].to_numpy(), draws)
        samples.append(rng(f"{segment}#{perks}").beta(alpha, beta))
    long = (
        groups.select("segment", "_set", "perk")
        .with_row_index("_g")
        .select(pl.all().repeat_by(draws).explode())
    )
    long = long.with_columns(
        _draw=pl.int_range(pl.len()).over("_g"), _sample=pl.Series(np.concatenate(samples))
    )
    wins = (
        long.sort("_sample", descending=True)
        .group_by("segment", "_set", "_draw")
        .agg(perk=pl.col("perk").first())
        .group_by("segment", "_set", "perk")
        .agg(_wins=pl.len())
    )
    sizes = groups.group_by("segment", "_set").agg(_k=pl.len())
    counts = (
        groups.select("segment", "_set", "perk")
        .join(wins, on=["segment", "_set", "perk"], how="left")
        .join(sizes, on=["segment", "_set"])
    )
    # numpy divides each pair exactly; polars may multiply by a reciprocal instead, which
    # moves the last bit with the number of rows
    p_ts = np.divide(
        counts["_wins"].fill_null(0).to_numpy() + 1.0, counts["_k"].to_numpy() + float(draws)
    )
    return counts.select("segment", "_set", "perk").with_columns(_p_ts=pl.Series(p_ts))


def _streams(
    learning: Learning, incident_id: str, step: int
) -> Callable[[str], np.random.Generator]:
    """A random stream per name, reproducible for the incident and step when seeded."""
    if learning.seed is None:
        return lambda _name: np.random.default_rng()
    seed = learning.seed

    def stream(name: str) -> np.random.Generator:
        salt = fnv1a(pl.Series([incident_id, name]))
        return np.random.default_rng([seed, int(salt[0]), step, int(salt[1])])

    return stream


def choose(
    frame: pl.DataFrame,
    table: OfferTable,
    learning: Learning,
    incident_id: str,
    step: int,
    hashes: pl.Series | None = None,
) -> pl.DataFrame:
    """Replace `candidate` and `rule_id` by the learned choice; add `choice_p` and `_learn`.

    `frame` has `customer_id`, `segment`, `candidate`, `rule_id` and the rule columns.
    `_learn` is null (table's choice), "explore" or "exploit", `_set` the candidate set.
    """
    cfg = learning.config
    if learning.posteriors.is_empty() or not _alternatives(table, cfg.value_band):
        # no evidence yet, or nothing interchangeable: the table decides (as below, cheaply)
        return frame.with_columns(
            choice_p=pl.lit(1.0), _learn=pl.lit(None, pl.String), _set=pl.lit(None, pl.String)
        )
    frame = interchangeable(frame, table, cfg.value_band).with_row_index("_row")
    opts = (
        frame.filter(pl.col("_options").list.len() > 1)
        .select("_row", pl.col("segment").cast(pl.String), "_options")
        .with_columns(_set=pl.col("_options").list.eval(pl.element().str.split(" ").list.first()))
        .with_columns(_set=pl.col("_set").list.join(","))
        .explode("_options")
        .with_columns(
            _opt=pl.int_range(pl.len()).over("_row"),
            perk=pl.col("_options").str.split(" ").list.first(),
            rule=pl.col("_options").str.split(" ").list.last(),
        )
        .join(
            learning.posteriors.select(
                "segment", perk="perk_id", alpha="alpha", beta="beta", n="delivered"
            ),
            on=["segment", "perk"],
            how="left",
        )
        .with_columns(
            pl.col("alpha").fill_null(cfg.prior_alpha),
            pl.col("beta").fill_null(cfg.prior_beta),
            pl.col("n").fill_null(0),
        )
        .with_columns(
            _active=pl.col("n").sum().over("_row") >= cfg.min_events,
            _mean=pl.when(pl.col("n") >= cfg.min_events).then(
                pl.col("alpha") / (pl.col("alpha") + pl.col("beta"))
            ),
        )
        .filter("_active")
    )
    none = frame.with_columns(
        choice_p=pl.lit(1.0), _learn=pl.lit(None, pl.String), _set=pl.lit(None, pl.String)
    ).drop("_options", "_row")
    if opts.is_empty():
        return none
    streams = _streams(learning, incident_id, step)
    best = (
        opts.sort(pl.col("_mean").fill_null(-1.0), "_opt", descending=[True, False])
        .group_by("_row")
        .agg(_best=pl.col("perk").first())
    )
    groups = opts.select("segment", "_set", "perk", "alpha", "beta").unique(
        ["segment", "_set", "perk"], maintain_order=True
    )
    p_ts = _ts_probabilities(groups, cfg.draws, streams)
    explore_u = unit_interval(frame["customer_id"], f"{incident_id}#explore", hashes)
    if learning.seed is None:
        draw_u = streams("draw").random(frame.height)
    else:
        draw_u = unit_interval(frame["customer_id"], f"{incident_id}#{step}#draw", hashes)
    explorers = (
        frame.select("_row")
        .with_columns(_u=pl.Series(draw_u))
        .filter(pl.Series(explore_u < cfg.share))
    )
    drawn = (  # the first option whose cumulative P_TS reaches the customer's uniform
        opts.join(explorers, on="_row")
        .join(p_ts, on=["segment", "_set", "perk"], how="left")
        .sort("_row", "_opt")
        .with_columns(_cum=pl.col("_p_ts").cum_sum().over("_row"))
        .with_columns(  # the last option always reaches: sums may differ in the last bit
            _reach=(pl.col("_cum") >= pl.col("_u") * pl.col("_p_ts").sum().over("_row"))
            | (pl.col("_opt") == pl.col("_opt").max().over("_row"))
        )
        .filter(pl.col("_reach"))
        .group_by("_row")
        .agg(_drawn=pl.col("perk").first())
    )
    picked = (
        opts.join(best, on="_row")
        .join(drawn, on="_row", how="left")
        .with_columns(
            _learn=pl.when(pl.col("_drawn").is_not_null())
            .then(pl.lit("explore"))
            .otherwise(pl.lit("exploit"))
        )
        .filter(pl.col("perk") == pl.coalesce("_drawn", "_best"))
        .join(p_ts, on=["segment", "_set", "perk"], how="left")
        .select(
            "_row",
            "_learn",
            "_set",
            _perk="perk",
            _rule="rule",
            choice_p=(1.0 - cfg.share) * (pl.col("perk") == pl.col("_best")).cast(pl.Float64)
            + cfg.share * pl.col("_p_ts"),
        )
    )
    return (
        frame.join(picked, on="_row", how="left", maintain_order="left")
        .with_columns(
            candidate=pl.coalesce("_perk", "candidate"),
            rule_id=pl.coalesce("_rule", "rule_id"),
            choice_p=pl.col("choice_p").fill_null(1.0),
        )
        .drop("_options", "_row", "_perk", "_rule")
    )
