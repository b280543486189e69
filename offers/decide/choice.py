"""Learning's choice among a rule's perk and its alternatives: one stage of the engine.

The engine is handed what learning knows as data (`Learning`: a frame of posteriors that
follows `POSTERIOR_SCHEMA` and the exploration bounds); `offers.learning` reads it from the
ledger's feedback. Nothing here touches a database.

A rule offers its `perk` or one of its `alternatives` (offers.catalog.tables.Rule): those
are the rule's candidates, marketing's word that any of them fits the customers the rule
matches. Learning chooses per customer among the candidates of the rule that matched:

- a `share` of customers (chosen by a stable hash per incident) *explore*: they get a
  candidate drawn uniformly at random, so every candidate keeps being measured from the
  first incident on, before any feedback, and a draft that picks any of them can be
  simulated (offers.learning.simulate);
- everyone else gets the candidate with the best posterior mean of acceptance among those
  with at least `min_events` delivered decisions in the customer's segment, else the
  rule's own perk (*exploit*).

So the probability of each candidate is exact, with no sampling to estimate it:
`share / k + (1 - share) * [candidate is the exploited one]` for k candidates
(`option_odds`). `choose` hands on `_k` and `_best` so that the engine can log, for a
decision that ends without a perk, the probability of exactly that
(offers.decide.eligibility).

The explorers' draw is a uniform number hashed from the customer, incident, step and
`Learning.seed`: a customer's choice does not depend on who else is decided in the same
call (a preview of one customer and an update of thousands agree), and the same seed
gives the same run. Without a seed, draws are fresh per process.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
import numpy as np
import polars as pl

from offers.catalog import OfferTable, candidates
from offers.decide.literal import constant
from offers.memo import per_object
from segmentation.ids import unit_interval

__all__ = [
    "DEFAULT_CONFIG",
    "POSTERIOR_SCHEMA",
    "ExploreConfig",
    "Learning",
    "choose",
    "explores",
    "option_odds",
    "rule_candidates",
]


class ExploreConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How far learning may move decisions away from the rule's own perk."""

    share: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.2
    min_events: Annotated[int, msgspec.Meta(ge=1)] = 10
    prior_alpha: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    prior_beta: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    window_days: Annotated[int, msgspec.Meta(ge=1)] = 90


DEFAULT_CONFIG = ExploreConfig()


@dataclass(frozen=True)
class Learning:
    """Posteriors (see `POSTERIOR_SCHEMA`) and the exploration bounds for one step.

    `seed` makes the explorers' draws reproducible (tests, audits, the demo); None draws
    them afresh in each process.
    """

    posteriors: pl.DataFrame
    config: ExploreConfig = field(default_factory=ExploreConfig)
    seed: int | None = None
    #: the salt of unseeded draws: fixed for this object, so its previews and updates agree
    _salt: str = field(default_factory=lambda: secrets.token_hex(8), repr=False)

    @property
    def salt(self) -> str:
        return self._salt if self.seed is None else f"seed{self.seed}"


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


@per_object
def rule_candidates(table: OfferTable) -> pl.DataFrame:
    """(rule_id, _opt, perk): the candidates of every rule that has alternatives, in order."""
    rows = [
        (r.id, i, perk)
        for r in table.rules
        if len(candidates(r)) > 1
        for i, perk in enumerate(candidates(r))
    ]
    return pl.DataFrame(
        rows, schema={"rule_id": pl.String, "_opt": pl.UInt32, "perk": pl.String}, orient="row"
    )


@per_object
def _rule_sets(table: OfferTable) -> pl.DataFrame:
    """(rule_id, _k, _set): how many candidates each rule with alternatives has, and which."""
    return (
        rule_candidates(table)
        .group_by("rule_id", maintain_order=True)
        .agg(_k=pl.len().cast(pl.UInt32), _set=pl.col("perk").str.join(","))
    )


@per_object
def _posterior(posteriors: pl.DataFrame, min_events: int) -> pl.DataFrame:
    """(segment, perk, _known, _mean) once per posteriors frame (frames are not changed)."""
    return posteriors.select(
        pl.col("segment").cast(pl.String),
        perk="perk_id",
        _known=pl.col("delivered") >= min_events,
        _mean=pl.col("alpha") / (pl.col("alpha") + pl.col("beta")),
    )


#: `_best` per (posteriors, table, min_events), each entry holding the objects it is for
_BEST: dict[tuple[int, int, int], tuple[Any, Any, pl.DataFrame]] = {}


def _best(posteriors: pl.DataFrame, table: OfferTable, min_events: int) -> pl.DataFrame:
    """`_best_of`, remembered: both objects are kept with their entry so that their ids
    are not reused while it is there."""
    key = (id(posteriors), id(table), min_events)
    entry = _BEST.get(key)
    if entry is not None and entry[0] is posteriors and entry[1] is table:
        return entry[2]
    if len(_BEST) >= 16:
        _BEST.clear()
    best = _best_of(posteriors, table, min_events)
    _BEST[key] = (posteriors, table, best)
    return best


def _best_of(posteriors: pl.DataFrame, table: OfferTable, min_events: int) -> pl.DataFrame:
    """(_segment, rule_id, _best, _any) for every segment with evidence on a rule's
    candidates: the place of the best-known mean (first in the rule's order on ties), else
    the rule's own perk (0). Once per posteriors and table (neither is changed); a segment
    missing here has no evidence: option 0, `_any` false."""
    posterior = _posterior(posteriors, min_events)
    scored = (
        posterior.select("segment")
        .unique()
        .join(rule_candidates(table), how="cross")
        .join(posterior, on=["segment", "perk"], how="left")
        .with_columns(pl.col("_known").fill_null(False))
    )
    return (
        scored.group_by("segment", "rule_id")
        .agg(
            _best=pl.col("_opt")
            .sort_by(
                pl.when("_known").then("_mean").otherwise(-1.0), "_opt", descending=[True, False]
            )
            .first(),
            _any=pl.col("_known").any(),
        )
        .rename({"segment": "_segment"})
    )


def option_odds(k: pl.Expr, best: pl.Expr, option: pl.Expr, share: float) -> pl.Expr:
    """The probability of option `option` of `k`, when `best` is the exploited one."""
    return share / k + (1.0 - share) * (option == best).cast(pl.Float64)


def explores(
    customer_ids: pl.Series, incident_id: str, hashes: pl.Series | None = None
) -> np.ndarray:
    """The stable uniform number that puts a customer among an incident's explorers
    (below `share`); previews ask it of one customer with `segmentation.ids.unit_value`."""
    return unit_interval(customer_ids, f"{incident_id}#explore", hashes)


#: What `choose` adds where learning does not choose.
_NONE = (
    ("choice_p", 1.0, pl.Float64()),
    ("_learn", None, pl.String()),
    ("_set", None, pl.String()),
    ("_k", None, pl.UInt32()),
    ("_best", None, pl.UInt32()),
)


def _none(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.hstack([constant(name, v, dtype, frame.height) for name, v, dtype in _NONE])


def choose(
    frame: pl.DataFrame,
    table: OfferTable,
    learning: Learning | None,
    incident_id: str,
    step: int,
    hashes: pl.Series | None = None,
) -> pl.DataFrame:
    """Replace `candidate` by the learned choice among the matched rule's candidates.

    `frame` has `customer_id`, `segment`, `candidate` and `rule_id`. Adds `choice_p` (the
    probability of the choice), `_learn` (null: the rule has one perk, or learning is off;
    "explore", "exploit" or "first": the rule's own perk while no candidate has enough
    evidence), `_set` (the candidates, comma-separated), `_k` (how many) and `_best` (the
    exploited one's place among them): with `option_odds`, the odds of every candidate.
    The exploited candidate depends only on the segment and the rule, so it is found once
    per pair; per customer there are two hashes and two joins.
    """
    options = rule_candidates(table)
    if learning is None or options.is_empty():
        return _none(frame)
    cfg = learning.config
    frame = frame.join(_rule_sets(table), on="rule_id", how="left", maintain_order="left")
    choosing = pl.col("_k").is_not_null()
    if frame.select(choosing.any()).item() is not True:
        return _none(frame.drop("_k", "_set"))
    best = _best(learning.posteriors, table, cfg.min_events)
    explore_u = explores(frame["customer_id"], incident_id, hashes)
    draw_u = unit_interval(
        frame["customer_id"], f"{incident_id}#{step}#draw#{learning.salt}", hashes
    )
    explore = pl.Series(explore_u < cfg.share) & frame["_k"].is_not_null()
    drawn = (pl.Series(draw_u) * frame["_k"]).floor().cast(pl.UInt32)
    picked = (
        frame.with_columns(
            _explore=explore, _drawn=drawn, _segment=pl.col("segment").cast(pl.String)
        )
        .join(best, on=["_segment", "rule_id"], how="left", maintain_order="left")
        .with_columns(
            # a segment with no evidence for the rule's candidates: the rule's own perk
            _best=pl.col("_best").fill_null(0),
            _any=pl.col("_any").fill_null(False),
        )
        .with_columns(
            _opt=pl.when("_explore")
            .then(pl.min_horizontal("_drawn", pl.col("_k") - 1))
            .otherwise("_best")
        )
        .join(options, on=["rule_id", "_opt"], how="left", maintain_order="left")
    )
    return picked.with_columns(
        candidate=pl.coalesce("perk", "candidate"),
        choice_p=pl.when(choosing)
        .then(option_odds(pl.col("_k"), pl.col("_best"), pl.col("_opt"), cfg.share))
        .otherwise(1.0),
        _learn=pl.when(~choosing)
        .then(pl.lit(None, pl.String))
        .when("_explore")
        .then(pl.lit("explore"))
        .when("_any")
        .then(pl.lit("exploit"))
        .otherwise(pl.lit("first")),
    ).drop("_explore", "_drawn", "_segment", "_any", "_opt", "perk")
