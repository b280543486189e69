"""Learning from feedback: posteriors, interchangeable perks, Thompson sampling with logged
choice probabilities, and the engine discovering the best perk in a simulated world."""

from __future__ import annotations

import polars as pl
import pytest

from offers.catalog.tables import OfferTable, Perk, Rule, load_default_table, match
from offers.decide.choice import ExploreConfig, Learning, choose, interchangeable
from offers.learning.evidence import posteriors
from offers.learning.world import make_world, world_table

SEGMENTS = ["leisure-family", "road-warrior"]


def _perk(pid: str, value: float) -> Perk:
    return Perk(id=pid, kind="voucher", value=value, cost=1.0, title={"en": pid})


@pytest.mark.parametrize(
    ("values", "priorities", "band", "options"),
    [
        ((10.0, 12.0, 40.0), (0, 0, 0), 0.25, ["a", "b"]),  # 40 is another value band
        ((10.0, 12.0, 40.0), (0, 1, 0), 0.25, ["a"]),  # another priority: not interchangeable
        ((10.0, 12.0, 40.0), (0, 0, 0), 0.0, ["a"]),  # no band: nothing interchangeable
        ((10.0, 10.0, 10.0), (0, 0, 0), 0.25, ["a", "b", "c"]),
    ],
)
def test_interchangeable_means_same_priority_and_value_band(
    values: tuple[float, ...], priorities: tuple[int, ...], band: float, options: list[str]
) -> None:
    table = OfferTable(
        name="t",
        perks=[_perk(p, v) for p, v in zip("abc", values, strict=True)],
        rules=[
            Rule(id=f"r{p}", perk=p, priority=prio, when={"segment": ["x"]})
            for p, prio in zip("abc", priorities, strict=True)
        ],
    )
    frame = match(pl.DataFrame({"segment": ["x"]}), table).rename({"perk_id": "candidate"})
    got = interchangeable(frame, table, band)["_options"][0].to_list()
    assert [o.split(" ")[0] for o in got] == options


def test_the_default_table_has_no_interchangeable_perks_at_step_one() -> None:
    table = load_default_table()
    frame = pl.DataFrame(
        {"segment": ["road-warrior", "duty-free-shopper"], "tier": ["gold", "gold"], "step": [1, 1]}
    )
    hit = match(frame, table).rename({"perk_id": "candidate"})
    assert interchangeable(hit, table, 0.25)["_options"].list.len().to_list() == [1, 1]


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
    return posteriors(pl.DataFrame(rows, schema_overrides={"rating": pl.Float64}))


def test_posteriors_are_beta_counts_with_the_numbers_behind_them() -> None:
    post = _evidence("miles-1200", n=100)
    row = post.filter(
        (pl.col("segment") == "road-warrior") & (pl.col("perk_id") == "miles-1200")
    ).row(0, named=True)
    assert (row["delivered"], row["redeemed"], row["alpha"], row["beta"]) == (100, 60, 61.0, 41.0)
    assert row["acceptance"] == pytest.approx(61 / 102)


def test_without_enough_events_the_table_decides() -> None:
    frame = _frame()
    learning = Learning(_evidence("miles-1200", n=4), ExploreConfig(min_events=20), seed=1)
    out = choose(frame, world_table(), learning, "I1", 2)
    assert out["candidate"].unique().to_list() == ["meal-12"]
    assert out["choice_p"].unique().to_list() == [1.0]
    assert out["_learn"].null_count() == out.height


def test_exploit_takes_the_best_and_exploration_stays_within_its_share() -> None:
    frame = _frame()
    learning = Learning(_evidence("miles-1200"), ExploreConfig(share=0.2), seed=1)
    out = choose(frame, world_table(), learning, "I1", 2)
    assert out.height == frame.height
    explored = out.filter(pl.col("_learn") == "explore")
    assert 0.15 <= explored.height / out.height <= 0.25
    exploit = out.filter(pl.col("_learn") == "exploit")
    assert exploit["candidate"].unique().to_list() == ["miles-1200"]
    assert (out["rule_id"] == "offer-" + out["candidate"]).all()
    # logged choice probabilities are one distribution per segment and candidate set
    # (perks never drawn here hold the small rest)
    probs = out.group_by("segment", "candidate").agg(pl.col("choice_p").first())
    totals = probs.group_by("segment").agg(pl.col("choice_p").sum())["choice_p"]
    assert all(0.99 <= t <= 1.0 + 1e-9 for t in totals)
    best_p = probs.filter(pl.col("candidate") == "miles-1200")["choice_p"]
    assert (best_p > 0.8).all() and (probs["choice_p"] > 0).all()


def test_the_same_seed_draws_the_same_choices() -> None:
    frame = _frame(400)
    learning = Learning(
        _evidence("dutyfree-12", n=3), ExploreConfig(share=1.0, min_events=1), seed=7
    )
    first = choose(frame, world_table(), learning, "I9", 2)
    assert first.equals(choose(frame, world_table(), learning, "I9", 2))
    assert first["candidate"].n_unique() > 1  # all explore: several perks drawn


def test_world_truth_has_one_clear_best_perk_per_segment() -> None:
    world = make_world(SEGMENTS, seed=3)
    best = world.best
    assert best.height == 2 and (best["best_acceptance"] >= 0.4).all()
    others = world.truth.join(best, on="segment").filter(pl.col("perk_id") != pl.col("best_perk"))
    assert (others["acceptance"] <= 0.3).all()
