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
`share / k + (1 - share) * [candidate is the exploited one]` for k candidates. `choose`
hands these on (`_options`, `_q`) so that the engine can log, for a decision that ends
without a perk, the probability of exactly that (offers.decide.eligibility).

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
import polars as pl

from offers.catalog import OfferTable, candidates
from segmentation.ids import unit_interval

__all__ = [
    "DEFAULT_CONFIG",
    "POSTERIOR_SCHEMA",
    "ExploreConfig",
    "Learning",
    "choose",
    "explores",
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


def rule_candidates(table: OfferTable) -> pl.DataFrame:
    """(rule_id, _options): the candidates of every rule that has alternatives."""
    rows = [(r.id, candidates(r)) for r in table.rules if len(candidates(r)) > 1]
    return pl.DataFrame(
        rows, schema={"rule_id": pl.String, "_options": pl.List(pl.String)}, orient="row"
    )


def explores(customer_ids: pl.Series, incident_id: str, hashes: pl.Series | None = None) -> Any:
    """The stable uniform number that puts a customer among an incident's explorers
    (below `share`); previews ask it of one customer with `segmentation.ids.unit_value`."""
    return unit_interval(customer_ids, f"{incident_id}#explore", hashes)


def _none(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        choice_p=pl.lit(1.0),
        _learn=pl.lit(None, pl.String),
        _set=pl.lit(None, pl.String),
        _options=pl.lit(None, pl.List(pl.String)),
        _q=pl.lit(None, pl.List(pl.Float64)),
    )


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
    evidence), `_set` (the candidates, comma-separated), and `_options` with `_q`: every
    candidate with its probability, in the rule's order.
    """
    sets = rule_candidates(table)
    if learning is None or sets.is_empty():
        return _none(frame)
    cfg = learning.config
    frame = frame.with_row_index("_row").join(sets, on="rule_id", how="left", maintain_order="left")
    rows = frame.filter(pl.col("_options").is_not_null())
    if rows.is_empty():
        return _none(frame.drop("_row", "_options"))
    # the profile book's hashes are row-aligned with `frame`: take those of `rows`
    mine = None if hashes is None else hashes.gather(rows["_row"])
    explore_u = explores(rows["customer_id"], incident_id, mine)
    draw_u = unit_interval(rows["customer_id"], f"{incident_id}#{step}#draw#{learning.salt}")
    posterior = learning.posteriors.select(
        pl.col("segment").cast(pl.String),
        perk="perk_id",
        _n="delivered",
        _mean=pl.col("alpha") / (pl.col("alpha") + pl.col("beta")),
    )
    long = (
        rows.select("_row", pl.col("segment").cast(pl.String), "_options")
        .with_columns(_k=pl.col("_options").list.len())
        .explode("_options")
        .rename({"_options": "perk"})
        .with_columns(_opt=pl.int_range(pl.len()).over("_row"))
        .join(posterior, on=["segment", "perk"], how="left", maintain_order="left")
        .with_columns(_known=pl.col("_n").fill_null(0) >= cfg.min_events)
    )
    # per row: the exploited candidate, the best-known mean (first in the rule's order on
    # ties), else the rule's own perk (option 0)
    ranked = pl.when(pl.col("_known")).then(pl.col("_mean")).otherwise(None)
    best = long.group_by("_row").agg(
        _best=pl.col("_opt")
        .sort_by(ranked.fill_null(-1.0), pl.col("_opt"), descending=[True, False])
        .first(),
        _any=pl.col("_known").any(),
    )
    picks = (
        rows.select("_row", "_options")
        .with_columns(
            _explore=pl.Series(explore_u < cfg.share),
            _u=pl.Series(draw_u),
            _k=pl.col("_options").list.len(),
        )
        .join(best, on="_row", maintain_order="left")
    )
    share = cfg.share
    picks = picks.with_columns(
        _pick=pl.when("_explore")
        .then(
            (pl.col("_u") * pl.col("_k")).floor().cast(pl.UInt32).clip(upper_bound=pl.col("_k") - 1)
        )
        .otherwise(pl.col("_best").cast(pl.UInt32)),
    ).with_columns(
        _learn=pl.when("_explore")
        .then(pl.lit("explore"))
        .when("_any")
        .then(pl.lit("exploit"))
        .otherwise(pl.lit("first")),
    )
    # q per option: share / k for everyone, plus (1 - share) for the exploited one
    q_long = (
        picks.select("_row", "_best", "_k")
        .with_columns(_i=pl.int_ranges(0, pl.col("_k")))
        .explode("_i")
        .with_columns(
            _q=share / pl.col("_k")
            + (1.0 - share) * (pl.col("_i") == pl.col("_best")).cast(pl.Float64)
        )
        .group_by("_row", maintain_order=True)
        .agg(pl.col("_q"))
    )
    chosen = picks.join(q_long, on="_row", maintain_order="left").select(
        "_row",
        "_learn",
        "_q",
        _perk=pl.col("_options").list.get(pl.col("_pick").cast(pl.Int64)),
        choice_p=pl.col("_q").list.get(pl.col("_pick").cast(pl.Int64)),
        _set=pl.col("_options").list.join(","),
    )
    return (
        frame.join(chosen, on="_row", how="left", maintain_order="left")
        .with_columns(
            candidate=pl.coalesce("_perk", "candidate"),
            choice_p=pl.col("choice_p").fill_null(1.0),
        )
        .drop("_row", "_perk")
    )
