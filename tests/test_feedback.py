"""Feedback intake: per-event answers, idempotent on event id, stored in the ledger database."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient

from api.cli.feedback import group, read_events, simulate_cmd
from api.http import feedback as routes_feedback
from api.runtime import Runtime
from api.settings import Settings
from offers.decide.policy import ContactPolicy
from offers.flow import apply_update
from offers.incidents.kinds import FlightFacts, Incident
from offers.learning.feedback import (
    FeedbackEvent,
    decision_id,
    events_frame,
    record_feedback,
    with_decision_ids,
)
from offers.ledger.schema import feedback_events
from offers.ledger.store import Ledger

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def incident(incident_id: str = "MG123-2026-11-23", delay: int = 30) -> Incident:
    return Incident(
        incident_id=incident_id,
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
        facts=FlightFacts(delay_minutes=delay, flight="MG123"),
    )


def decide(runtime: Runtime, incident_id: str = "MG123-2026-11-23", n: int = 20) -> pl.DataFrame:
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0))
    ids = runtime.book.frame["customer_id"].head(n).to_list()
    return apply_update(parts, incident(incident_id), ids, NOW).decisions


def settings_of(runtime: Runtime) -> Settings:
    """CLI settings pointing at the runtime's database (SQLite file or PostgreSQL schema)."""
    url = runtime.ledger.engine.url
    if url.get_backend_name() == "sqlite":
        return Settings(data_dir=runtime.settings.data_dir)
    return Settings(
        data_dir=runtime.settings.data_dir, database_url=url.render_as_string(hide_password=False)
    )


def event(event_id: str, **fields: Any) -> FeedbackEvent:
    return msgspec.convert(
        {"event_id": event_id, "kind": "delivered", "occurred_at": NOW, **fields},
        FeedbackEvent,
    )


def test_migration_creates_feedback_events_as_the_schema_says(ledger: Ledger) -> None:
    columns = {c["name"] for c in sa.inspect(ledger.engine).get_columns("feedback_events")}
    assert columns == set(feedback_events.c.keys())


def test_decision_id_is_incident_step_customer() -> None:
    assert decision_id("MG1", 2, "c42") == "MG1:2:c42"
    frame = pl.DataFrame({"incident_id": ["MG1"], "step": [2], "customer_id": ["c42"]})
    assert with_decision_ids(frame)["decision_id"].to_list() == ["MG1:2:c42"]


def test_a_batch_answers_per_event(runtime: Runtime) -> None:
    decided = decide(runtime)
    first, second = decided["customer_id"][0], decided["customer_id"][1]
    events = [
        event("e1", decision_id=decision_id("MG123-2026-11-23", 1, first)),
        event("e2", incident_id="MG123-2026-11-23", customer_id=second, step=1, kind="redeemed"),
        event("e3", decision_id="MG123-2026-11-23:1:nobody"),
        event("e1", decision_id=decision_id("MG123-2026-11-23", 1, second)),  # same id again
        event("e4", decision_id=decision_id("MG123-2026-11-23", 1, first), kind="rating", rating=4),
        event("e5", decision_id=decision_id("MG123-2026-11-23", 2, first)),  # no step 2
    ]
    out = record_feedback(runtime.ledger, events_frame(events), NOW)
    assert out.rows() == [
        ("e1", "accepted", f"MG123-2026-11-23:1:{first}"),
        ("e2", "accepted", f"MG123-2026-11-23:1:{second}"),
        ("e3", "unknown_decision", "MG123-2026-11-23:1:nobody"),
        ("e1", "duplicate", f"MG123-2026-11-23:1:{second}"),
        ("e4", "accepted", f"MG123-2026-11-23:1:{first}"),
        ("e5", "unknown_decision", f"MG123-2026-11-23:2:{first}"),
    ]
    again = record_feedback(runtime.ledger, events_frame(events[:2]), NOW)
    assert again["status"].to_list() == ["duplicate", "duplicate"]
    with runtime.ledger.reading() as tx:
        stored = tx.conn.execute(sa.select(sa.func.count()).select_from(feedback_events))
        assert stored.scalar_one() == 3


def test_ids_with_colons_resolve_to_the_recorded_decision(runtime: Runtime) -> None:
    decided = decide(runtime, "MG1:2026:11", n=3)
    who = decided["customer_id"][0]
    out = record_feedback(
        runtime.ledger, events_frame([event("x", decision_id=f"MG1:2026:11:1:{who}")]), NOW
    )
    assert out["status"].to_list() == ["accepted"]
    assert out["decision_id"].to_list() == [f"MG1:2026:11:1:{who}"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "rating"}, "rating"),
        ({"kind": "rating", "rating": 6}, "<= 5"),
        ({"kind": "returned"}, "within_days"),
        ({"kind": "delivered", "within_days": 3}, "within_days"),
        ({"decision_id": None}, "give decision_id"),
        ({"incident_id": "MG1", "customer_id": "c", "step": 1}, "not both"),
    ],
)
def test_malformed_events_are_refused_naming_the_field(
    fields: dict[str, Any], message: str
) -> None:
    raw = {"event_id": "e", "kind": "delivered", "occurred_at": NOW, "decision_id": "A:1:c"}
    raw.update(fields)
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert({k: v for k, v in raw.items() if v is not None}, FeedbackEvent)


def test_http_feedback_answers_per_event_and_declares_its_role(runtime: Runtime) -> None:
    decided = decide(runtime)
    who = decided["customer_id"][0]
    app = Litestar(route_handlers=routes_feedback.handlers, state=State({"runtime": runtime}))
    body = {
        "events": [
            {
                "event_id": "h1",
                "kind": "opened",
                "occurred_at": "2026-11-23T10:00:00+08:00",
                "decision_id": f"MG123-2026-11-23:1:{who}",
            },
            {
                "event_id": "h2",
                "kind": "complaint",
                "occurred_at": "2026-11-23T10:00:00Z",
                "decision_id": "MG123-2026-11-23:1:ghost",
            },
        ]
    }
    with TestClient(app=app) as client:
        first = client.post("/v1/feedback", json=body)
        assert first.status_code == 200, first.text
        assert first.json()["accepted"] == 1 and first.json()["unknown_decision"] == 1
        again = client.post("/v1/feedback", json=body).json()
        assert [r["status"] for r in again["results"]] == ["duplicate", "unknown_decision"]
        bad = client.post("/v1/feedback", json={"events": [{**body["events"][0], "rating": 9}]})
        assert bad.status_code == 400 or bad.status_code == 422
    roles = {next(iter(h.paths)): h.opt.get("role") for h in routes_feedback.handlers}
    assert roles == {
        "/v1/feedback": "desk",
        "/v1/offer-tables/{name:str}/simulate": "marketing",
        "/v1/reports/offers": "analyst",
    }


def test_cli_import_reads_ndjson_csv_and_reports_each_kind(
    runtime: Runtime, tmp_path: Path
) -> None:
    decided = decide(runtime)
    ids = decided["customer_id"].to_list()
    lines = [
        {"event_id": f"n{i}", "kind": "redeemed", "occurred_at": "2026-11-23T10:00:00Z",
         "decision_id": f"MG123-2026-11-23:1:{c}"}
        for i, c in enumerate(ids[:3])
    ]  # fmt: skip
    lines.append({**lines[0], "event_id": "n9", "decision_id": "MG123-2026-11-23:1:ghost"})
    ndjson = tmp_path / "events.ndjson"
    ndjson.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    pl.DataFrame(
        {
            "event_id": ["c1", "n0"],
            "kind": ["rating", "redeemed"],
            "occurred_at": ["2026-11-23T10:00:00Z"] * 2,
            "incident_id": ["MG123-2026-11-23"] * 2,
            "customer_id": [ids[4], ids[0]],
            "step": [1, 1],
            "rating": [5, None],
        }
    ).write_csv(tmp_path / "events.csv")
    assert len(read_events(tmp_path / "events.csv")) == 2
    settings = settings_of(runtime)
    runner = CliRunner()
    out = runner.invoke(group, ["import", str(ndjson)], obj=settings, terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "4 events: 3 accepted, 0 duplicate, 1 unknown decision" in out.output
    out = runner.invoke(group, ["import", str(tmp_path / "events.csv")], obj=settings)
    assert "2 events: 1 accepted, 1 duplicate, 0 unknown decision" in out.output, out.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([lines[0], {**lines[1], "kind": "rating", "rating": 0}]))
    with pytest.raises(ValueError, match="event 2, field rating"):
        read_events(bad)
    assert group.commands["simulate"] is simulate_cmd
