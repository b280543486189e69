"""What a client gets wrong is its own: JSON bodies are strictly typed (`"50"` is not an
integer, `"false"` not a boolean) and a client's mistake is logged as one info line without a
traceback or what it sent, while a server fault keeps its error and traceback.

Through litestar's TestClient over the real app; the log is read as `makegood serve` writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import get
from litestar.testing import TestClient

from api.app import create_app
from api.logs import JsonFormatter
from api.runtime import Runtime


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def _incident(runtime: Runtime, **change: Any) -> dict[str, Any]:
    return {
        "incident_id": "H1",
        "kind": "flight_delay",
        "occurred_at": "2026-11-23T07:05:00+08:00",
        "facts": {"delay_minutes": 50, "flight": "MG123"},
        "customers": runtime.book.frame["customer_id"].to_list()[:5],
    } | change


def _event(**change: Any) -> dict[str, Any]:
    return {
        "event_id": "e1",
        "kind": "rating",
        "occurred_at": "2026-11-23T09:00:00+00:00",
        "decision_id": "H1:1:c000001",
        "rating": 5,
    } | change


# --- strict JSON types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"facts": {"delay_minutes": "50", "flight": "MG123"}}, "facts.delay_minutes"),
        ({"dry_run": "false"}, "dry_run"),
        ({"budget": "100"}, "budget"),
    ],
)
def test_a_string_where_the_schema_says_number_or_boolean_is_a_422(
    client: TestClient[Any], runtime: Runtime, change: dict[str, Any], field: str
) -> None:
    answer = client.post("/v1/incidents", json=_incident(runtime, **change))
    assert answer.status_code == 422, answer.text
    assert f"{field}: Expected" in answer.json()["detail"]
    assert runtime.ledger.incident("H1") is None and runtime.ledger.count("H1") == 0
    assert client.post("/v1/incidents", json=_incident(runtime)).status_code == 201


def test_patch_and_feedback_bodies_are_strict_too(
    client: TestClient[Any], runtime: Runtime
) -> None:
    assert client.post("/v1/incidents", json=_incident(runtime)).status_code == 201
    facts = {"delay_minutes": 100, "flight": "MG123"}
    patch = client.patch("/v1/incidents/H1", json={"facts": facts, "dry_run": "false"})
    assert patch.status_code == 422 and "dry_run" in patch.json()["detail"], patch.text
    assert runtime.ledger.incident("H1")["step"] == 2  # type: ignore[index]
    assert runtime.ledger.count("H1") == 5  # the 50-minute step only

    decision = client.get("/v1/incidents/H1/decisions").json()["decisions"][0]["decision_id"]
    event = _event(decision_id=decision, rating="5")
    rating = client.post("/v1/feedback", json={"events": [event]})
    assert rating.status_code == 422, rating.text
    assert "events[0].rating: Expected `int | null`, got `str`" in rating.json()["detail"]
    taken = client.post("/v1/feedback", json={"events": [_event(decision_id=decision)]})
    assert taken.status_code == 200 and taken.json()["accepted"] == 1, taken.text


def test_query_parameters_still_parse_and_the_schema_keeps_every_body(
    client: TestClient[Any], runtime: Runtime
) -> None:
    assert client.post("/v1/incidents", json=_incident(runtime)).status_code == 201
    page = client.get("/v1/incidents/H1/decisions", params={"limit": "2", "step": "2"})
    assert page.status_code == 200 and len(page.json()["decisions"]) == 2
    operations = client.get("/schema/openapi.json").json()["paths"]
    create = operations["/v1/incidents"]["post"]["requestBody"]["content"]["application/json"]
    assert create["schema"]  # the request schema is still documented
    feedback = operations["/v1/feedback"]["post"]["requestBody"]["content"]["application/json"]
    assert feedback["schema"]["$ref"].endswith("FeedbackBatch")


# --- client errors are one info line, server faults keep their traceback ------------------------


@pytest.fixture
def json_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The log as `makegood serve` writes it: one JSON object per line."""
    caplog.handler.setFormatter(JsonFormatter())
    caplog.set_level(logging.INFO)
    return caplog


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_unknown_customers_are_logged_as_one_info_line_without_personal_data(
    client: TestClient[Any], runtime: Runtime, json_log: pytest.LogCaptureFixture
) -> None:
    json_log.clear()
    answer = client.post("/v1/incidents", json=_incident(runtime, customers=["Jane Doe 0612"]))
    assert answer.status_code == 422
    lines = json_log.text.splitlines()
    assert all(r.levelno < logging.WARNING and r.exc_info is None for r in json_log.records)
    assert "Traceback" not in json_log.text and "Jane" not in json_log.text
    refused = [line for line in lines if "UnknownCustomers" in line]
    assert len(refused) == 1 and '"level":"info"' in refused[0], lines


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_server_fault_is_logged_as_an_error_with_its_traceback(
    runtime: Runtime, admin_headers: dict[str, str], json_log: pytest.LogCaptureFixture
) -> None:
    @get("/v1/broken", sync_to_thread=False, opt={"role": "admin"})
    def broken() -> None:
        raise RuntimeError("a bug")

    app = create_app(runtime)
    app.register(broken)
    with TestClient(app=app) as client:
        json_log.clear()
        assert client.get("/v1/broken", headers=admin_headers).status_code == 500
    errors = [r for r in json_log.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert "RuntimeError: a bug" in json_log.text
