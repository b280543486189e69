"""A cancellation's notice over HTTP: the desk says when the customer was told and what
re-routing was offered, and the answer owes (or does not owe) EU 261 cash accordingly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime

ROUTE = {"flight": "MG5", "origin": "MAD", "destination": "MUC", "carrier_country": "ES"}


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def create(runtime: Runtime, kind: str, facts: dict[str, Any]) -> dict[str, Any]:
    return {
        "incident_id": "MG5-2026-12-01",
        "kind": kind,
        "occurred_at": "2026-12-01T07:05:00+01:00",
        "facts": {**ROUTE, **facts},
        "customers": runtime.book.frame["customer_id"].to_list()[:2],
    }


@pytest.mark.parametrize(
    ("notice", "facts", "cash"),
    [
        ({}, {"delay_minutes": 100}, 125.0),  # notice not given: told on the day
        ({"notice_days": 14}, {"delay_minutes": 600}, None),
        ({"notice_days": 13}, {"delay_minutes": 600}, 250.0),
        ({"notice_days": 9, "reroute_departs_early_minutes": 120}, {"delay_minutes": 239}, None),
        ({"notice_days": 9, "reroute_departs_early_minutes": 121}, {"delay_minutes": 239}, 250.0),
        ({"notice_days": 2, "reroute_departs_early_minutes": 60}, {"delay_minutes": 119}, None),
        ({"notice_days": 2, "reroute_departs_early_minutes": 61}, {"delay_minutes": 119}, 125.0),
    ],
)
def test_a_cancellation_answers_the_law_for_its_notice(
    client: TestClient[Any],
    runtime: Runtime,
    notice: dict[str, int],
    facts: dict[str, int],
    cash: float | None,
) -> None:
    answer = client.post("/v1/incidents", json=create(runtime, "cancellation", facts | notice))
    assert answer.status_code == 201, answer.text
    for decision in answer.json()["decisions"]:
        owed = {e["kind"]: e for e in decision["entitlements"] if e["regime"] == "EU261"}
        assert (owed["cash"]["amount"] if "cash" in owed else None) == cash
        assert {"care.meal", "care.communication", "refund"} <= owed.keys()
    stored = client.get("/v1/incidents/MG5-2026-12-01").json()["facts"]
    assert {k: stored[k] for k in notice} == notice


def test_notice_facts_belong_to_cancellations_only(
    client: TestClient[Any], runtime: Runtime
) -> None:
    late = create(runtime, "flight_delay", {"delay_minutes": 200, "notice_days": 20})
    refused = client.post("/v1/incidents", json=late)
    assert refused.status_code == 422 and "notice_days" in refused.text
    bad = create(runtime, "cancellation", {"delay_minutes": 200, "notice_days": -1})
    refused = client.post("/v1/incidents", json=bad)
    assert refused.status_code == 422 and "facts.notice_days" in refused.text
    assert runtime.ledger.incident("MG5-2026-12-01") is None


def test_a_delay_patched_into_a_cancellation_keeps_its_notice(
    client: TestClient[Any], runtime: Runtime
) -> None:
    client.post("/v1/incidents", json=create(runtime, "flight_delay", {"delay_minutes": 60}))
    facts = {**ROUTE, "delay_minutes": 600, "notice_days": 20}
    patched = client.patch(
        "/v1/incidents/MG5-2026-12-01", json={"kind": "cancellation", "facts": facts}
    )
    assert patched.status_code == 200, patched.text
    for decision in patched.json()["decisions"]:
        kinds = {e["kind"] for e in decision["entitlements"] if e["regime"] == "EU261"}
        assert "cash" not in kinds and "refund" in kinds
