"""Learning driven through the HTTP API on a world where marketing's first choices are
often wrong: the engine finds what each segment accepts, feedback counts for the very next
decision, and the simulation of a changed segment covers the truth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import polars as pl
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime, learning_source
from offers.learning.world import marketer_world
from tests.learning_http import covers, most_given, play, publish, simulated_segment

SEED = 2026


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    """The server as `makegood serve` wires it (learning on, seeded), over a real ledger."""
    settings = msgspec.structs.replace(runtime.settings, seed=SEED)
    runtime.learning = learning_source(settings, runtime.ledger)
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def test_the_engine_learns_what_each_segment_accepts_over_http(
    client: TestClient[Any], runtime: Runtime
) -> None:
    segments = runtime.book.frame["segment"].unique().to_list()
    world = marketer_world(segments, SEED)
    best = world.best.join(
        world.truth.filter(pl.col("perk_id") == pl.first("perk_id").over("segment")).select(
            "segment", first="perk_id"
        ),
        on="segment",
    )
    assert (best["best_perk"] != best["first"]).sum() >= 2  # marketing guessed wrong twice
    publish(client, world)
    played = play(client, world, runtime.book.frame["customer_id"], incidents=20, pax=300)
    decided = played.decisions

    # feedback posted after the first incident already steers the second one
    second = decided.filter(pl.col("incident_id") == f"SIM{SEED}-001")
    assert second["reasons"].str.contains("best acceptance so far").sum() > 100

    assert played.regret <= 0.5 * played.uniform, (played.regret, played.uniform)
    last = [f"SIM{SEED}-{i:03d}" for i in range(15, 20)]
    found = world.best.join(most_given(decided, last), on="segment", how="left")
    assert (found["given"] == found["best_perk"]).mean() >= 0.8, found  # type: ignore[operator]
    # occasional flyers have no rule of their own: the fallback's candidates, learned too
    assert found.filter(pl.col("segment") == "occasional-flyer")["given"].to_list() == [
        "dutyfree-12"
    ]

    # road warriors: what would marketing's own first choice, a lounge pass, have done?
    group, truth = simulated_segment(client, world, decided, "biz", "lounge-30m", "road-warrior")
    assert group["supported"] and not group["too_little_data"]
    assert all(covers(group, truth).values()), (group["acceptance"], truth)

    metrics = client.get("/metrics").text
    assert "makegood_learning_refresh_seconds 2.0" in metrics
    assert "makegood_learning_evidence_read_timestamp_seconds" in metrics


def test_seed_and_refresh_come_from_the_environment(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A seed makes a server's draws reproducible; by default they stay random."""
    from api.settings import Settings

    default = learning_source(Settings.from_env(runtime.settings.data_dir), runtime.ledger)
    assert (default.seed, default.ttl) == (None, 2.0)
    monkeypatch.setenv("MAKEGOOD_SEED", "42")
    monkeypatch.setenv("MAKEGOOD_LEARNING_REFRESH", "0.5")
    seeded = learning_source(Settings.from_env(runtime.settings.data_dir), runtime.ledger)
    assert (seeded.seed, seeded.ttl) == (42, 0.5)
    for name, bad in (("MAKEGOOD_SEED", "soon"), ("MAKEGOOD_LEARNING_REFRESH", "-1")):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ValueError, match=name):
            Settings.from_env(runtime.settings.data_dir)
        monkeypatch.delenv(name)
