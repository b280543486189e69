"""Logged propensities are the real ones: on a log the engine wrote (holdout, contact caps,
the first incident before any evidence, learning among alternatives), the importance
weights of any draft the logs support average 1."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import msgspec
import polars as pl

from api.runtime import Runtime
from offers.decide.choice import ExploreConfig
from offers.decide.policy import ContactPolicy
from offers.flow import apply_update
from offers.learning.evidence import LearningSource
from offers.learning.feedback import record_feedback
from offers.learning.outcomes import load_outcomes
from offers.learning.replay import replay
from offers.learning.simulate import estimate
from offers.learning.world import make_world, world_table

HOLDOUT = 0.1


def test_weights_average_one_for_every_supported_draft(runtime: Runtime) -> None:
    table = world_table()
    world = make_world(runtime.book.frame["segment"].unique().to_list(), seed=11, table=table)
    source = LearningSource(runtime.ledger, ExploreConfig(share=0.3), ttl=0.0, seed=11)
    parts = replace(
        runtime.parts(),
        table=lambda _kind: table,
        learning=source,
        # one perk per customer a month: a customer met twice is capped the second time
        contact=ContactPolicy(holdout_share=HOLDOUT, max_perks=1),
    )
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    stream = world.incidents(runtime.book.frame["customer_id"], 8, 400, start)
    for i, (incident, ids) in enumerate(stream):
        decided = apply_update(parts, incident, ids, incident.occurred_at).decisions
        record_feedback(
            runtime.ledger, world.feedback(decided, incident.occurred_at, i), incident.occurred_at
        )
    log = load_outcomes(runtime.ledger, start)
    assert log.height == 8 * 400
    capped = log.filter(pl.col("perk_id").is_null() & ~pl.col("holdout"))
    assert capped.height > 200 and (capped["propensity"] == 1.0).all()  # no perk, certainly
    held_out = log.filter(pl.col("holdout"))
    # a held-out customer whom the cap would have stopped anyway got "no perk" for sure
    assert set(held_out["propensity"].round(12).unique()) == {HOLDOUT, 1.0}
    first = log.filter(pl.col("incident_id") == stream[0][0].incident_id)
    assert first.drop_nulls("perk_id")["perk_id"].n_unique() == len(table.perks)
    for perk in table.perks:
        rules = [msgspec.structs.replace(table.rules[0], perk=perk.id, alternatives=[])]
        draft = msgspec.structs.replace(table, rules=rules)
        replayed = replay(log, draft)
        total, _segments, missing = estimate(replayed)
        w = replayed.select(
            pl.col("perk_id").eq_missing(pl.col("target")).cast(pl.Float64) / pl.col("propensity")
        ).to_series()
        se = float(w.std()) / w.len() ** 0.5  # type: ignore[operator]
        assert not missing
        assert abs(total.mean_weight - 1.0) <= 3 * se, (perk.id, total.mean_weight, se)
