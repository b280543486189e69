"""Learning from feedback: posteriors, each rule's alternatives, exploration with exact logged
choice probabilities, and the engine discovering the best perk in a simulated world."""

from __future__ import annotations

import polars as pl
import pytest

from offers.catalog.matching import match
from offers.catalog.tables import OfferTable, Perk, Rule
from offers.decide.choice import ExploreConfig, Learning, choose
from offers.learning.evidence import posteriors
from offers.learning.world import make_world, world_table
from tests.tables import named_table

SEGMENTS = ["leisure-family", "road-warrior"]


def _perk(pid: str, value: float) -> Perk:
    return Perk(id=pid, kind="voucher", value=value, cost=1.0, title={"en": pid})


def _options(table: OfferTable, segments: list[str]) -> list[list[str]]:
    frame = pl.DataFrame(
        {"customer_id": [f"c{i}" for i in range(len(segments))], "segment": segments}
    )
    hit = match(frame, table).rename({"perk_id": "candidate"})
    out = choose(hit, table, Learning(_evidence("x", n=0)), "I1", 1)
    return [o.split(",") if o else [] for o in out["_set"].to_list()]


def test_each_rule_offers_its_own_alternatives_whatever_other_rules_offer() -> None:
    """Families get miles as an alternative even though shoppers' rule offers miles too."""
    table = OfferTable(
        name="t",
        perks=[_perk("dutyfree-5", 10), _perk("miles-1000", 10), _perk("meal-12", 12)],
        rules=[
            Rule(
                id="shop",
                perk="dutyfree-5",
                alternatives=["miles-1000"],
                when={"segment": ["shop"]},
            ),
            Rule(
                id="family",
                perk="meal-12",
                alternatives=["miles-1000"],
                when={"segment": ["family"]},
            ),
        ],
    )
    assert _options(table, ["shop", "family", "other"]) == [
        ["dutyfree-5", "miles-1000"],
        ["meal-12", "miles-1000"],
        [],
    ]


def test_a_rule_without_alternatives_is_never_a_choice() -> None:
    table = named_table()
    frame = pl.DataFrame(
        {
            "customer_id": ["a", "b"],
            "segment": ["road-warrior", "duty-free-shopper"],
            "tier": ["gold", "gold"],
            "step": [1, 1],
        }
    )
    hit = match(frame, table).rename({"perk_id": "candidate"})
    out = choose(hit, table, Learning(_evidence("x", n=0)), "I1", 1)
    assert out["choice_p"].to_list() == [1.0, 1.0] and out["_learn"].null_count() == 2


def _frame(n: int = 2000) -> pl.DataFrame:
    customers = pl.DataFrame(
        {"customer_id": [f"c{i:05d}" for i in range(n)], "segment": SEGMENTS * (n // 2)}
    )
    return match(customers, world_table()).rename({"perk_id": "candidate"})


def _evidence(best: str, n: int = 200) -> pl.DataFrame:
    """Posteriors where `best` is accepted 60% and every other world perk 10%."""
    rows = [
        {
            "segment": s,
            "perk_id": p.id,
            "delivered": True,
            "redeemed": i < (0.6 if p.id == best else 0.1) * n,
            "rating": None,
            "complaint": False,
        }
        for s in SEGMENTS
        for p in world_table().perks
        for i in range(n)
    ]
    schema = {
        "segment": pl.String,
        "perk_id": pl.String,
        "delivered": pl.Boolean,
        "redeemed": pl.Boolean,
        "rating": pl.Float64,
        "complaint": pl.Boolean,
    }
    return posteriors(pl.DataFrame(rows, schema=schema))


def test_posteriors_are_beta_counts_with_the_numbers_behind_them() -> None:
    post = _evidence("miles-1200", n=100)
    row = post.filter(
        (pl.col("segment") == "road-warrior") & (pl.col("perk_id") == "miles-1200")
    ).row(0, named=True)
    assert (row["delivered"], row["redeemed"], row["alpha"], row["beta"]) == (100, 60, 61.0, 41.0)
    assert row["acceptance"] == pytest.approx(61 / 102)


def _shares(out: pl.DataFrame) -> dict[str, float]:
    return dict(out.group_by("candidate").agg(pl.len() / out.height).iter_rows())


def test_before_any_evidence_a_share_explores_every_candidate_with_exact_odds() -> None:
    """The first incident of a table already tries every candidate, and logs the true
    probability: share / k for a drawn candidate, plus (1 - share) for the rule's perk."""
    frame = _frame(4000)
    out = choose(
        frame,
        world_table(),
        Learning(_evidence("x", n=0), ExploreConfig(share=0.2), seed=1),
        "I1",
        2,
    )
    shares = _shares(out)
    assert set(shares) == {p.id for p in world_table().perks}
    assert 0.8 + 0.05 - 0.03 <= shares["meal-12"] <= 0.8 + 0.05 + 0.03
    odds = out.group_by("candidate").agg(pl.col("choice_p").unique().round(12))
    assert dict(odds.iter_rows()) == {
        "meal-12": [0.85],
        "dutyfree-12": [0.05],
        "miles-1200": [0.05],
        "lounge-30m": [0.05],
    }
    assert set(out["_learn"].unique()) == {"explore", "first"}
    k, best = out["_k"][0], out["_best"][0]
    total = sum(0.2 / k + 0.8 * (i == best) for i in range(k))
    assert (k, best, round(total, 12)) == (4, 0, 1.0)


def test_exploit_takes_the_best_and_exploration_stays_within_its_share() -> None:
    frame = _frame()
    learning = Learning(_evidence("miles-1200"), ExploreConfig(share=0.2), seed=1)
    out = choose(frame, world_table(), learning, "I1", 2)
    assert out.height == frame.height
    explored = out.filter(pl.col("_learn") == "explore")
    assert 0.15 <= explored.height / out.height <= 0.25
    exploit = out.filter(pl.col("_learn") == "exploit")
    assert exploit["candidate"].unique().to_list() == ["miles-1200"]
    assert (out["rule_id"] == "any-delay").all()  # the rule that matched, whatever the perk
    # logged choice probabilities are the exact distribution of each row's choice
    probs = out.group_by("candidate").agg(pl.col("choice_p").unique().round(12))
    assert dict(probs.iter_rows()) == {
        "miles-1200": [0.85],
        **{p: [0.05] for p in ("meal-12", "dutyfree-12", "lounge-30m") if p in probs["candidate"]},
    }
    assert 0.8 <= _shares(out)["miles-1200"] <= 0.9


def test_a_perk_is_exploited_only_with_enough_evidence() -> None:
    frame = _frame()
    learning = Learning(_evidence("miles-1200", n=4), ExploreConfig(min_events=20), seed=1)
    out = choose(frame, world_table(), learning, "I1", 2)
    assert set(out.filter(pl.col("_learn") != "explore")["candidate"].unique()) == {"meal-12"}


def test_the_same_seed_draws_the_same_choices_and_no_seed_draws_afresh() -> None:
    frame = _frame(400)
    config = ExploreConfig(share=1.0)
    seeded = Learning(_evidence("dutyfree-12", n=3), config, seed=7)
    first = choose(frame, world_table(), seeded, "I9", 2)
    again = Learning(_evidence("dutyfree-12", n=3), config, seed=7)
    assert first.equals(choose(frame, world_table(), again, "I9", 2))
    assert first["candidate"].n_unique() == 4  # all explore: every perk drawn
    other = choose(frame, world_table(), Learning(seeded.posteriors, config, seed=8), "I9", 2)
    assert not first["candidate"].equals(other["candidate"])
    a = choose(frame, world_table(), Learning(seeded.posteriors, config), "I9", 2)
    b = choose(frame, world_table(), Learning(seeded.posteriors, config), "I9", 2)
    assert not a["candidate"].equals(b["candidate"])


def test_world_truth_has_one_clear_best_perk_per_segment() -> None:
    world = make_world(SEGMENTS, seed=3)
    best = world.best
    assert best.height == 2 and (best["best_acceptance"] >= 0.4).all()
    others = world.truth.join(best, on="segment").filter(pl.col("perk_id") != pl.col("best_perk"))
    assert (others["acceptance"] <= 0.3).all()
