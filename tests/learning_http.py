"""The learning loop driven from outside, as a desk and a marketer would: publish a table with
alternatives, open incidents, post feedback, simulate a draft, all over HTTP.

Shared by tests/test_learning_http.py and bench/ope_coverage.py (many seeds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import polars as pl

from offers.catalog import dump_table
from offers.learning.world import World

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@dataclass
class Played:
    """Every decision of the run (one row each) and the run's regret against uniform choice."""

    decisions: pl.DataFrame
    regret: float
    uniform: float


def publish(client: Any, world: World) -> None:
    """Marketing publishes the world's table as the next version of the live one."""
    name = world.table.name
    body = dump_table(world.table)
    put = client.put(
        f"/v1/offer-tables/{name}/draft",
        content=body,
        headers={"content-type": "application/toml"},
    )
    assert put.status_code == 200, put.text
    done = client.post(
        f"/v1/offer-tables/{name}/publish", json={"by": "mei", "reason": "alternatives"}
    )
    assert done.status_code == 200, done.text


def _frame(decisions: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "incident_id": [d["incident_id"] for d in decisions],
            "step": [d["step"] for d in decisions],
            "customer_id": [d["customer_id"] for d in decisions],
            "segment": [d["segment"]["name"] for d in decisions],
            "perk_id": [d["perk"]["id"] if d["perk"] else None for d in decisions],
            "text": [d["message"]["text"] if d["message"] else None for d in decisions],
            "propensity": [d["propensity"] for d in decisions],
            "holdout": [d["holdout"] for d in decisions],
            "reasons": [" | ".join(d["reasons"]) for d in decisions],
        },
        schema_overrides={"step": pl.Int32, "perk_id": pl.String, "text": pl.String},
    )


def play(client: Any, world: World, customers: pl.Series, incidents: int, pax: int) -> Played:
    """`incidents` delayed flights of `pax` customers; after each, its feedback is posted
    and the next incident is opened at once."""
    parts = []
    regret = uniform = 0.0
    for i, (incident, ids) in enumerate(world.incidents(customers, incidents, pax, START)):
        created = client.post(
            "/v1/incidents",
            json={
                "incident_id": incident.incident_id,
                "kind": "flight_delay",
                "occurred_at": incident.occurred_at.isoformat(),
                "facts": msgspec.to_builtins(incident.facts),
                "customers": ids,
            },
        )
        assert created.status_code == 201, created.text
        decided = _frame(created.json()["decisions"])
        parts.append(decided)
        engine, random = world.regret(decided)
        regret, uniform = regret + engine, uniform + random
        events = world.feedback(decided, datetime.now(UTC), i).drop(
            "incident_id", "customer_id", "step"
        )
        rows = [
            {k: v for k, v in row.items() if v is not None}
            for row in events.with_columns(pl.col("occurred_at").dt.to_string("%+")).to_dicts()
        ]
        for at in range(0, len(rows), 10_000):
            sent = client.post("/v1/feedback", json={"events": rows[at : at + 10_000]})
            assert sent.status_code == 200 and sent.json()["unknown_decision"] == 0, sent.text
    return Played(pl.concat(parts), regret, uniform)


def most_given(decisions: pl.DataFrame, last: list[str]) -> pl.DataFrame:
    """(segment, given): the perk given most often per segment in the `last` incidents."""
    return (
        decisions.filter(pl.col("incident_id").is_in(last) & pl.col("perk_id").is_not_null())
        .group_by("segment", "perk_id")
        .len()
        .sort("len", "perk_id", descending=[True, False])
        .group_by("segment", maintain_order=True)
        .agg(given=pl.col("perk_id").first())
    )


def changed_draft(world: World, rule_id: str, perk: str) -> str:
    """The world's table with one rule giving only `perk`, as TOML."""
    rules = [
        msgspec.structs.replace(r, perk=perk, alternatives=[]) if r.id == rule_id else r
        for r in world.table.rules
    ]
    return dump_table(msgspec.structs.replace(world.table, rules=rules))


def simulated_segment(
    client: Any, world: World, decisions: pl.DataFrame, rule_id: str, perk: str, segment: str
) -> tuple[dict[str, Any], float]:
    """The simulation's estimates for `segment` under a draft whose `rule_id` gives only
    `perk`, and the truth: the perk's acceptance for every decision that could get a perk
    (the logs' certain "no perk" stays so under any table)."""
    name = world.table.name
    put = client.put(
        f"/v1/offer-tables/{name}/draft",
        content=changed_draft(world, rule_id, perk),
        headers={"content-type": "application/toml"},
    )
    assert put.status_code == 200, put.text
    sim = client.post(f"/v1/offer-tables/{name}/simulate?since=90d")
    assert sim.status_code == 200, sim.text
    (group,) = [g for g in sim.json()["segments"] if g["segment"] == segment]
    mine = decisions.filter(pl.col("segment") == segment)
    withheld = mine.filter(pl.col("perk_id").is_null() & (pl.col("propensity") >= 1.0)).height
    rate = world.truth.filter((pl.col("segment") == segment) & (pl.col("perk_id") == perk))
    truth = float(rate["acceptance"][0]) * (1 - withheld / mine.height)
    return group, truth


def covers(group: dict[str, Any], truth: float) -> dict[str, bool]:
    """Whether each estimator's 95% interval of acceptance holds the truth."""
    return {
        name: est["low"] is not None and est["low"] <= truth <= est["high"]
        for name, est in group["acceptance"].items()
    }
