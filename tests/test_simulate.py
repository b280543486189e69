"""Simulation before publishing: off-policy estimates that cover the truth, say when they
cannot, and never touch the ledger."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient

from api.app import create_app
from api.cli.feedback import simulate_cmd
from api.http import feedback as routes_feedback
from api.runtime import Runtime
from offers.catalog.tables import DEFAULTS, dump_table, load_default_table
from offers.decide.policy import ContactPolicy
from offers.flow import apply_update
from offers.incidents.kinds import FlightFacts, Incident
from offers.learning.feedback import record_feedback
from offers.learning.simulate import estimate, parse_since, simulate
from offers.learning.world import logged_world, make_world
from offers.ledger.schema import metadata
from offers.ledger.versions import Store
from segmentation.registry import Registry
from tests.test_feedback import settings_of

SEGMENTS = ("road-warrior", "premium-business", "duty-free-shopper", "leisure-family", "other")


@pytest.mark.parametrize(
    ("text", "span"),
    [("90d", timedelta(days=90)), ("12w", timedelta(weeks=12)), ("36h", timedelta(hours=36))],
)
def test_since_spans(text: str, span: timedelta) -> None:
    assert parse_since(text) == span


def test_a_bad_span_names_the_option() -> None:
    with pytest.raises(ValueError, match="since"):
        parse_since("3 months")


def _draft_on(world_seed: int, n: int, epsilon: float = 0.3) -> tuple[pl.DataFrame, float, float]:
    """A logged world, a known draft (a random perk per segment) and its true values."""
    world = make_world(SEGMENTS, world_seed)
    logged = logged_world(world, n, world_seed, epsilon=epsilon)
    rng = np.random.default_rng(world_seed + 1000)
    perks = [p.id for p in world.table.perks]
    draft = {s: perks[int(rng.integers(len(perks)))] for s in SEGMENTS}
    cost = {p.id: p.cost for p in world.table.perks}
    replayed = logged.with_columns(
        target=pl.col("segment").replace_strict(draft, return_dtype=pl.String)
    ).with_columns(target_cost=pl.col("target").replace_strict(cost, return_dtype=pl.Float64))
    truth = replayed.join(
        world.truth.select("segment", target="perk_id", acceptance="acceptance"),
        on=["segment", "target"],
    )
    value = float(truth["acceptance"].mean())  # type: ignore[arg-type]
    cost_value = float((truth["acceptance"] * truth["target_cost"]).mean())  # type: ignore[arg-type]
    return replayed, value, cost_value


def test_ope_intervals_cover_the_true_value_in_most_seeded_runs() -> None:
    """20 seeded worlds of 4,000 logged decisions each; 95% intervals should miss about 1."""
    covered = {"ips": 0, "snips": 0, "dr": 0}
    cost_covered = dict(covered)
    for seed in range(20):
        replayed, value, cost_value = _draft_on(seed, 4000)
        total, segments, missing = estimate(replayed)
        assert not missing and total.supported and len(segments) == len(SEGMENTS)
        for name in covered:
            a, c = total.acceptance[name], total.cost[name]  # type: ignore[index]
            assert a.low is not None and a.high is not None
            assert c.low is not None and c.high is not None
            covered[name] += a.low <= value <= a.high
            cost_covered[name] += c.low <= cost_value <= c.high
    # observed with these seeds: acceptance 18, 18, 19 of 20; cost 20, 20, 20 of 20
    assert min(covered.values()) >= 17, covered
    assert min(cost_covered.values()) >= 17, cost_covered


def test_a_perk_the_logs_never_tried_is_no_support_not_a_guess() -> None:
    replayed, _, _ = _draft_on(3, 2000, epsilon=0.0)  # the logs only ever gave the first perk
    first = replayed.drop_nulls("perk_id")["perk_id"][0]
    total, segments, missing = estimate(replayed)
    tried = {s.segment for s in segments if s.supported}
    assert tried == set(replayed.filter(pl.col("target") == first)["segment"].unique())
    assert {m.segment for m in missing} == set(SEGMENTS) - tried
    assert all(m.perk_id != first for m in missing)
    assert total.acceptance["dr"].value is None and not total.supported  # type: ignore[index]
    for s in segments:
        assert (s.acceptance["ips"].value is None) == (not s.supported)  # type: ignore[index]


def _digest(runtime: Runtime) -> str:
    """Every row of every table, in key order: what "touches no ledger rows" means."""
    h = hashlib.sha256()
    with runtime.ledger.reading() as tx:
        for table in metadata.sorted_tables:
            if not sa.inspect(tx.conn).has_table(table.name):
                continue
            keys = list(table.primary_key.columns) or list(table.columns)
            for row in tx.conn.execute(sa.select(table).order_by(*keys)):
                h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def test_simulation_leaves_the_ledger_unchanged(runtime: Runtime, tmp_path: Path) -> None:
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0.1))
    world = make_world(runtime.book.frame["segment"].unique().to_list(), seed=5)
    now = datetime.now(UTC)
    ids = runtime.book.frame["customer_id"].head(400).to_list()
    for i, delay in enumerate((30, 60)):
        incident = Incident(
            incident_id=f"SIMTEST-{i}",
            kind="flight_delay",
            occurred_at=now,
            facts=FlightFacts(delay_minutes=delay, flight="MG9"),
        )
        decided = apply_update(parts, incident, ids, now).decisions
        record_feedback(runtime.ledger, world.feedback(decided, now, i), now)
    default = load_default_table()
    rules = [
        msgspec.structs.replace(r, perk="upgrade-next") if r.id == "fallback-meal" else r
        for r in default.rules
    ]
    draft = msgspec.structs.replace(default, rules=rules)
    path = tmp_path / "draft.toml"
    path.write_text(dump_table(draft), encoding="utf-8")
    snapshots = runtime.settings.data_dir / "profiles"
    snapshots.mkdir(exist_ok=True)  # the CLI reads rule columns such as `tier` from here
    registry = Registry(runtime.settings.data_dir / "models")  # and personas' segments
    registry.save(runtime.model)
    registry.promote(runtime.model.card.version)
    runtime.book.frame.drop("_id_hash").write_parquet(snapshots / "snapshot-0001.parquet")

    runtime.ledger.engine.dispose()  # SQLite: checkpoint the WAL into the file first
    db_file = runtime.settings.data_dir / "makegood.db"
    sqlite = runtime.ledger.engine.url.get_backend_name() == "sqlite"
    before_bytes = db_file.read_bytes() if sqlite else b""
    before = _digest(runtime)
    runtime.ledger.engine.dispose()

    sim = simulate(
        runtime.ledger, draft, now, timedelta(days=90), runtime.book.select, traits=runtime.traits
    )
    out = CliRunner().invoke(
        simulate_cmd, [str(path), "--since", "90d"], obj=settings_of(runtime), terminal_width=220
    )
    assert out.exit_code == 0, out.output
    assert "no support" in out.output and "upgrade-next" in out.output
    # a headline per segment in words, then the estimators for analysts
    words = " ".join(out.output.split())
    assert "the draft against the live table of flight-delay" in words
    assert "not enough data: the draft gives perks these customers were never given" in words
    assert "acceptance 0.0% (95% interval 0.0% to" in words and "same perks as the live" in words
    assert words.index("all customers:") < words.index("details for analysts")
    assert sim.decisions == 800
    assert any(m.perk_id == "upgrade-next" for m in sim.no_support)
    unchanged = [s for s in sim.segments if s.supported]
    assert unchanged and all(s.acceptance["dr"].value is not None for s in unchanged)  # type: ignore[index]

    assert _digest(runtime) == before
    runtime.ledger.engine.dispose()
    if sqlite:
        assert db_file.read_bytes() == before_bytes
    assert (DEFAULTS / "offers.toml").exists()


def test_http_simulates_the_stored_draft_and_serves_the_report(runtime: Runtime) -> None:
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0.1))
    now = datetime.now(UTC)
    ids = runtime.book.frame["customer_id"].head(200).to_list()
    incident = Incident(
        incident_id="HTTP-SIM",
        kind="flight_delay",
        occurred_at=now,
        facts=FlightFacts(delay_minutes=30, flight="MG9"),
    )
    decided = apply_update(parts, incident, ids, now).decisions
    world = make_world(runtime.book.frame["segment"].unique().to_list(), seed=9)
    record_feedback(runtime.ledger, world.feedback(decided, now), now)
    Store(runtime.engine).save_draft(load_default_table(), "tests", now)
    app = Litestar(route_handlers=routes_feedback.handlers, state=State({"runtime": runtime}))
    with TestClient(app=app) as client:
        sim = client.post("/v1/offer-tables/flight-delay/simulate?since=30d")
        assert sim.status_code == 200, sim.text
        body = sim.json()
        assert body["decisions"] == 200 and body["no_support"] == []
        assert body["total"]["acceptance"]["dr"]["value"] is not None
        assert client.post("/v1/offer-tables/nope/simulate").status_code == 404
        assert client.post("/v1/offer-tables/flight-delay/simulate?since=soon").status_code == 422
        page = client.get("/v1/reports/offers?since=30d")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Lift over holdout" in page.text


def test_little_support_keeps_intervals_honest_and_says_too_little_data() -> None:
    """17 matched decisions, none redeemed (the true acceptance was 0.078): no estimator
    may claim [0, 0], none may go below 0, and the group says it has too little data."""
    n_other = 300
    replayed = pl.DataFrame(
        {
            "segment": ["occasional-flyer"] * (17 + n_other),
            "perk_id": ["dutyfree-5"] * 17 + ["miles-1000"] * n_other,
            "propensity": [0.05] * 17 + [0.95] * n_other,
            "redeemed": [False] * 17 + [i % 7 == 0 for i in range(n_other)],
            "perk_cost": [4.0] * 17 + [3.0] * n_other,
            "target": ["dutyfree-5"] * (17 + n_other),
            "target_cost": [4.0] * (17 + n_other),
        }
    )
    _total, (group,), _missing = estimate(replayed)
    assert group.supported and group.too_little_data and round(group.effective_size) == 17
    for name in ("ips", "snips", "dr"):
        a = group.acceptance[name]  # type: ignore[index]
        c = group.cost[name]  # type: ignore[index]
        assert a.value is not None and a.low is not None and a.high is not None
        assert 0.0 <= a.low <= a.value <= a.high and a.high >= 0.078, (name, a)
        assert c.value is not None and c.low is not None and c.high is not None
        assert 0.0 <= c.low <= c.value <= c.high and c.high >= 0.078 * 4.0, (name, c)


def test_simulating_a_draft_without_perks_answers_instead_of_failing(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    """Found by schemathesis: replaying logged decisions under a table with no perks was a
    500 (an empty catalog had no column types to join on)."""
    empty = msgspec.structs.replace(load_default_table(), name="bare", perks=[], rules=[])
    Store(runtime.engine).save_draft(empty, "tests", datetime.now(UTC))
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        ids = runtime.book.frame["customer_id"].head(5).to_list()
        opened = client.post(
            "/v1/incidents",
            json={
                "incident_id": "SIM-BARE",
                "kind": "flight_delay",
                "occurred_at": "2026-12-01T07:00:00Z",
                "facts": {"delay_minutes": 200, "flight": "MG7"},
                "customers": ids,
            },
        )
        assert opened.status_code == 201, opened.text
        sim = client.post("/v1/offer-tables/bare/simulate")
        assert sim.status_code == 200, sim.text
        assert sim.json()["decisions"] == 5
