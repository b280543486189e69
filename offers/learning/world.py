"""A simulated world with a hidden truth, for tests and `makegood demo --learn`.

Each segment has a true acceptance per perk that only this module knows; incidents touch
random customers; feedback (delivered, opened, redeemed, rating, complaint, returned) is
drawn from the truth. Everything is vectorized numpy over the decision frame, seeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from offers.catalog import OfferTable, Perk, PerkKind, Rule
from offers.incidents import FlightFacts, Incident
from offers.learning.feedback import EVENT_SCHEMA, decision_id_expr

__all__ = [
    "MARKETER_TRUTH",
    "WORLD_PERKS",
    "World",
    "make_world",
    "marketer_table",
    "marketer_world",
    "world_table",
]

#: Perks of one value band (EUR 12 face value): alternatives of one another, to learn among.
WORLD_PERKS: tuple[tuple[str, PerkKind, float, str], ...] = (
    ("meal-12", "meal", 8.0, "a EUR 12 meal voucher"),
    ("dutyfree-12", "voucher", 5.0, "a EUR 12 duty-free voucher"),
    ("miles-1200", "miles", 3.5, "1,200 bonus miles"),
    ("lounge-30m", "lounge_pass", 9.0, "30 minutes in the lounge"),
)


def world_table(name: str = "world") -> OfferTable:
    """One rule for every delayed customer: a meal, or any of the other perks of the same
    value as its alternatives."""
    perks = [
        Perk(
            id=pid,
            kind=kind,
            value=12.0,
            cost=cost,
            validity_days=1,
            usable_now=True,
            title={"en": title},
        )
        for pid, kind, cost, title in WORLD_PERKS
    ]
    rules = [
        Rule(
            id="any-delay",
            perk=perks[0].id,
            alternatives=[p.id for p in perks[1:]],
            description="any delayed customer: one of four perks of the same value",
        )
    ]
    return OfferTable(name=name, perks=perks, rules=rules)


@dataclass(frozen=True)
class World:
    """Hidden truth per (segment, perk): `acceptance`, `rating_mean`, `complaint`; plus
    `base_return` (chance to come back within 30 days) and the perk's lift on it."""

    truth: pl.DataFrame
    table: OfferTable
    seed: int
    base_return: float = 0.30
    return_lift: float = 0.08

    @property
    def best(self) -> pl.DataFrame:
        """(segment, best_perk, best_acceptance): what a perfect engine would give."""
        return (
            self.truth.sort("acceptance", descending=True)
            .group_by("segment", maintain_order=True)
            .agg(best_perk=pl.col("perk_id").first(), best_acceptance=pl.col("acceptance").first())
            .sort("segment")
        )

    def incidents(
        self, customers: pl.Series, n: int, pax: int, start: datetime, every_days: int = 3
    ) -> list[tuple[Incident, list[str]]]:
        """`n` delayed flights (60 min: step 2) of `pax` random customers each."""
        rng = np.random.default_rng([self.seed, 1])
        ids = customers.to_numpy()
        out = []
        for i in range(n):
            at = start + timedelta(days=every_days * i)
            incident = Incident(
                incident_id=f"SIM{self.seed}-{i:03d}",
                kind="flight_delay",
                occurred_at=at,
                facts=FlightFacts(delay_minutes=60, flight=f"SIM{i:03d}"),
            )
            picked = rng.choice(len(ids), size=min(pax, len(ids)), replace=False)
            out.append((incident, [str(x) for x in ids[picked]]))
        return out

    def regret(self, decided: pl.DataFrame) -> tuple[float, float]:
        """(regret of the perks given, expected regret of uniform choice among the same
        customers' eligible perks); both sums of acceptance lost to the best perk."""
        given = decided.filter(pl.col("perk_id").is_not_null()).select("segment", "perk_id")
        truth = self.truth.select("segment", "perk_id", "acceptance")
        mean = truth.group_by("segment").agg(uniform=pl.col("acceptance").mean())
        scored = (
            given.join(truth, on=["segment", "perk_id"], how="left")
            .join(self.best, on="segment")
            .join(mean, on="segment")
        )
        engine = float((scored["best_acceptance"] - scored["acceptance"]).sum())
        uniform = float((scored["best_acceptance"] - scored["uniform"]).sum())
        return engine, uniform

    def feedback(self, decided: pl.DataFrame, now: datetime, round_: int = 0) -> pl.DataFrame:
        """Events for decisions (EVENT_SCHEMA), drawn from the truth; ids are stable, so
        sending the same round twice is a duplicate, not new evidence."""
        rng = np.random.default_rng([self.seed, 2, round_])
        sent = decided.filter(pl.col("text").is_not_null()) if "text" in decided else decided
        frame = sent.select("incident_id", "step", "customer_id", "segment", "perk_id").join(
            self.truth, on=["segment", "perk_id"], how="left"
        )
        n = frame.height
        delivered = rng.random(n) < 0.97
        has_perk = frame["perk_id"].is_not_null().to_numpy()
        accept = frame["acceptance"].fill_null(0.0).to_numpy()
        redeemed = delivered & has_perk & (rng.random(n) < accept)
        opened = delivered & (redeemed | (rng.random(n) < 0.6))
        rated = delivered & (rng.random(n) < 0.35)
        rating_mu = frame["rating_mean"].fill_null(3.0).to_numpy() + 0.8 * redeemed
        rating = np.clip(np.rint(rng.normal(rating_mu, 0.8)), 1, 5).astype(np.int32)
        complaint = delivered & (
            rng.random(n) < np.where(has_perk, frame["complaint"].fill_null(0.0).to_numpy(), 0.06)
        )
        returned = rng.random(n) < self.base_return + self.return_lift * redeemed
        days = rng.integers(3, 30, size=n, dtype=np.int32)
        keyed = frame.select(decision_id_expr()).with_columns(
            delivered=pl.Series(delivered),
            opened=pl.Series(opened),
            redeemed=pl.Series(redeemed),
            rating=pl.Series(rated),
            complaint=pl.Series(complaint),
            returned=pl.Series(returned),
            _stars=pl.Series(rating),
            _days=pl.Series(days),
        )
        parts = []
        for kind in ("delivered", "opened", "redeemed", "rating", "complaint", "returned"):
            parts.append(
                keyed.filter(kind).select(
                    event_id=pl.format("{}:{}", "decision_id", pl.lit(kind)),
                    kind=pl.lit(kind),
                    occurred_at=pl.lit(now, dtype=pl.Datetime("us", "UTC")),
                    decision_id="decision_id",
                    rating=pl.when(pl.lit(kind == "rating")).then(pl.col("_stars")),
                    within_days=pl.when(pl.lit(kind == "returned")).then(pl.col("_days")),
                )
            )
        events = pl.concat(parts)
        return events.with_columns(
            incident_id=pl.lit(None, pl.String),
            customer_id=pl.lit(None, pl.String),
            step=pl.lit(None, pl.Int32),
        ).select(pl.col(c).cast(t) for c, t in EVENT_SCHEMA.items())


#: A world where marketing's first choices are often wrong: per segment (None: any segment
#: without a rule of its own), the true acceptance of each candidate of its rule in
#: `marketer_table`. Road warriors, families and occasional flyers prefer an alternative;
#: duty-free shoppers' two candidates are a near tie.
MARKETER_TRUTH: dict[str | None, dict[str, float]] = {
    "road-warrior": {"lounge-30m": 0.20, "miles-1200": 0.45, "meal-12": 0.10},
    "premium-business": {"lounge-30m": 0.50, "miles-1200": 0.30, "meal-12": 0.12},
    "duty-free-shopper": {"dutyfree-12": 0.32, "miles-1200": 0.30},
    "leisure-family": {"meal-12": 0.15, "miles-1200": 0.45, "dutyfree-12": 0.20},
    None: {"meal-12": 0.20, "dutyfree-12": 0.45, "miles-1200": 0.15},
}


def marketer_table(name: str = "flight-delay") -> OfferTable:
    """The table a marketer would write for the world's perks: a first choice and its
    alternatives per segment group, and a fallback with alternatives for everyone else."""
    perks = world_table().perks
    biz = ["road-warrior", "premium-business"]
    rules = [
        Rule(
            id="biz",
            perk="lounge-30m",
            alternatives=["miles-1200", "meal-12"],
            when={"segment": biz},
        ),
        Rule(
            id="shop",
            perk="dutyfree-12",
            alternatives=["miles-1200"],
            when={"segment": ["duty-free-shopper"]},
        ),
        Rule(
            id="family",
            perk="meal-12",
            alternatives=["miles-1200", "dutyfree-12"],
            when={"segment": ["leisure-family"]},
        ),
        Rule(
            id="anyone", perk="meal-12", alternatives=["dutyfree-12", "miles-1200"], fallback=True
        ),
    ]
    return OfferTable(name=name, perks=perks, rules=rules)


#: The hidden truth of a world: per segment and perk, what a customer would do.
TRUTH_SCHEMA = {
    "segment": pl.String,
    "perk_id": pl.String,
    "acceptance": pl.Float64,
    "rating_mean": pl.Float64,
    "complaint": pl.Float64,
}


def marketer_world(segments: Sequence[str], seed: int) -> World:
    """`MARKETER_TRUTH` for these segments (those without a rule of their own take the
    fallback's truth) with `marketer_table`."""
    rows = [
        (segment, perk, rate, 2.5 + 3 * rate, 0.02)
        for segment in sorted(segments)
        for perk, rate in MARKETER_TRUTH.get(segment, MARKETER_TRUTH[None]).items()
    ]
    truth = pl.DataFrame(rows, schema=TRUTH_SCHEMA, orient="row")
    return World(truth=truth, table=marketer_table(), seed=seed)


def make_world(segments: Sequence[str], seed: int, table: OfferTable | None = None) -> World:
    """A truth per segment: one clearly best perk (acceptance 0.40-0.60), the others
    0.08-0.30; ratings follow acceptance, complaints are rare."""
    table = table or world_table()
    rng = np.random.default_rng([seed, 0])
    perks = [p.id for p in table.perks]
    rows = []
    for segment in sorted(segments):
        best = int(rng.integers(len(perks)))
        for i, perk in enumerate(perks):
            rate = rng.uniform(0.40, 0.60) if i == best else rng.uniform(0.08, 0.30)
            rows.append(
                (segment, perk, float(rate), 2.5 + 3 * float(rate), float(rng.uniform(0.0, 0.04)))
            )
    truth = pl.DataFrame(rows, schema=TRUTH_SCHEMA, orient="row")
    return World(truth=truth, table=table, seed=seed)


def logged_world(
    world: World, n: int, seed: int, epsilon: float = 0.3, holdout: float = 0.05
) -> pl.DataFrame:
    """`n` logged decisions with known propensities, for checking off-policy estimates.

    The logging policy holds out `holdout`, gives each segment its first perk with
    probability 1 - epsilon and a uniformly random perk otherwise; redemptions follow the
    truth. Columns as `offers.learning.simulate.estimate` reads them (without the draft's target).
    """
    rng = np.random.default_rng([world.seed, 3, seed])
    segments = world.truth["segment"].unique().sort().to_numpy()
    perks = np.array([p.id for p in world.table.perks])
    cost = {p.id: p.cost for p in world.table.perks}
    seg = rng.choice(segments, size=n)
    held = rng.random(n) < holdout
    explore = rng.random(n) < epsilon
    action = np.where(explore, rng.choice(perks, size=n), perks[0])
    k = len(perks)
    p_action = (1 - epsilon) * (action == perks[0]) + epsilon / k
    frame = pl.DataFrame(
        {
            "segment": seg,
            "perk_id": pl.Series(action).set(pl.Series(held), None),
            "propensity": np.where(held, holdout, (1 - holdout) * p_action),
        },
        schema={"segment": pl.String, "perk_id": pl.String, "propensity": pl.Float64},
    ).join(
        world.truth.select("segment", "perk_id", "acceptance"),
        on=["segment", "perk_id"],
        how="left",
        maintain_order="left",
    )
    redeemed = rng.random(n) < frame["acceptance"].fill_null(0.0).to_numpy()
    return frame.with_columns(
        redeemed=pl.Series(redeemed),
        perk_cost=pl.col("perk_id").replace_strict(cost, default=None, return_dtype=pl.Float64),
    ).drop("acceptance")
