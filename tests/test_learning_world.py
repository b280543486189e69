"""The engine, fed by feedback from a simulated world, finds each segment's best perk."""

from __future__ import annotations

import io

import polars as pl
from rich.console import Console

from api.cli.demo_learn import learn
from api.runtime import Runtime
from offers.learning.evidence import top_perks


def test_the_engine_finds_each_segments_best_perk_in_a_simulated_world(
    runtime: Runtime,
) -> None:
    """20 incidents of 300 customers with feedback drawn from a hidden truth (the demo)."""
    world, tally, post = learn(runtime, runtime.ledger, Console(file=io.StringIO()), 20)
    assert tally.engine <= 0.5 * tally.uniform, (tally.engine, tally.uniform)
    found = top_perks(post).join(world.best, on="segment", how="right")
    assert (found["top"] == found["best_perk"]).mean() >= 0.8, found  # type: ignore[operator]
    stored = runtime.ledger.decisions(f"SIM{world.seed}-019")
    given = stored.filter(pl.col("perk_id").is_not_null())
    assert given["propensity"].is_between(0.0, 1.0, closed="right").all()
    assert (given["propensity"] < 0.95).any()  # explored or exploited choices carry their odds
    assert given["reasons"].str.contains("learning: ").all()
