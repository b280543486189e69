"""The HTTP contract through litestar's test client, over real databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def body(runtime: Runtime, delay: int = 60, n: int = 25, **extra: Any) -> dict[str, Any]:
    return {
        "incident_id": "MG123-2026-11-23",
        "kind": "flight_delay",
        "occurred_at": "2026-11-23T07:05:00+08:00",
        "facts": {"delay_minutes": delay, "flight": "MG123", "origin": "TPE"},
        "customers": runtime.book.frame["customer_id"].to_list()[:n],
        **extra,
    }


def test_health_ready_and_schema(client: TestClient[Any]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["offer_table"] == "flight-delay v1"
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert {"/v1/incidents", "/v1/incidents/{incident_id}"} <= set(paths)


def test_create_then_patch_has_the_designed_shape(
    client: TestClient[Any], runtime: Runtime
) -> None:
    created = client.post("/v1/incidents", json=body(runtime, delay=30))
    assert created.status_code == 201
    data = created.json()
    assert (data["step"], data["issued"]) == (1, 25)
    decision = data["decisions"][0]
    assert set(decision) == {
        "decision_id",
        "customer_id",
        "incident_id",
        "step",
        "segment",
        "message",
        "perk",
        "entitlements",
        "followups",
        "reasons",
        "propensity",
        "holdout",
        "needs_human",
    }
    assert decision["message"]["kind"] == "apology"
    assert set(decision["segment"]) == {"name", "description"}
    assert decision["perk"]["code"] in decision["message"]["text"]

    patched = client.patch(
        "/v1/incidents/MG123-2026-11-23", json={"facts": {"delay_minutes": 100, "flight": "MG123"}}
    )
    assert patched.status_code == 200
    assert (patched.json()["step"], patched.json()["issued"]) == (3, 25)
    assert {d["message"]["kind"] for d in patched.json()["decisions"]} == {"update"}


def test_same_patch_twice_returns_same_decisions_and_one_row_per_step(
    client: TestClient[Any], runtime: Runtime
) -> None:
    client.post("/v1/incidents", json=body(runtime, delay=30))
    patch = {"facts": {"delay_minutes": 60, "flight": "MG123"}}
    first = client.patch("/v1/incidents/MG123-2026-11-23", json=patch).json()
    second = client.patch("/v1/incidents/MG123-2026-11-23", json=patch).json()
    assert first["issued"] == 25 and second["issued"] == 0
    assert first["decisions"] == second["decisions"]
    assert runtime.ledger.count("MG123-2026-11-23") == 50  # 25 customers x 2 steps


def test_repeated_create_is_harmless(client: TestClient[Any], runtime: Runtime) -> None:
    first = client.post("/v1/incidents", json=body(runtime))
    again = client.post("/v1/incidents", json=body(runtime))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["issued"] == 0 and again.json()["decisions"] == first.json()["decisions"]


def test_decisions_are_paginated(client: TestClient[Any], runtime: Runtime) -> None:
    client.post("/v1/incidents", json=body(runtime, delay=30))
    client.patch(
        "/v1/incidents/MG123-2026-11-23", json={"facts": {"delay_minutes": 60, "flight": "MG123"}}
    )
    page = client.get("/v1/incidents/MG123-2026-11-23/decisions", params={"limit": 20}).json()
    assert (page["total"], len(page["decisions"]), page["next_offset"]) == (50, 20, 20)
    rest = client.get(
        "/v1/incidents/MG123-2026-11-23/decisions", params={"limit": 40, "offset": 20}
    ).json()
    assert len(rest["decisions"]) == 30 and rest["next_offset"] is None
    whole = runtime.ledger.decisions("MG123-2026-11-23").select("step", "customer_id").rows()
    paged = [(d["step"], d["customer_id"]) for d in page["decisions"] + rest["decisions"]]
    assert paged == whole  # in order, each once
    step2 = client.get("/v1/incidents/MG123-2026-11-23/decisions", params={"step": 2}).json()
    assert step2["total"] == 25 and {d["step"] for d in step2["decisions"]} == {2}


@pytest.mark.parametrize(
    ("change", "status", "names"),
    [
        ({"kind": "volcano"}, 422, "kind"),
        ({"facts": {"delay_minutes": -5, "flight": "MG123"}}, 422, "facts.delay_minutes"),
        ({"facts": {"delay_minutes": "late", "flight": "MG123"}}, 422, "facts.delay_minutes"),
        ({"facts": {"delay_minutes": 50}}, 422, "flight"),
        ({"occurred_at": "2026-11-23T07:05:00"}, 422, "occurred_at"),
        ({"customers": []}, 422, "customers"),
        ({"customers": ["c000001", "nobody"]}, 422, "nobody"),
        ({"surprise": 1}, 422, "surprise"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(
    client: TestClient[Any], runtime: Runtime, change: dict[str, Any], status: int, names: str
) -> None:
    response = client.post("/v1/incidents", json=body(runtime) | change)
    assert response.status_code == status, response.text
    assert names in response.json()["detail"]
    assert runtime.ledger.incident("MG123-2026-11-23") is None
    assert runtime.ledger.count("MG123-2026-11-23") == 0


def test_malformed_json_is_a_400(client: TestClient[Any], runtime: Runtime) -> None:
    response = client.post(
        "/v1/incidents",
        content=b'{"incident_id": "x", ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert runtime.ledger.count("x") == 0


def test_patch_of_unknown_incident_is_404_and_bad_patch_writes_nothing(
    client: TestClient[Any], runtime: Runtime
) -> None:
    missing = client.patch(
        "/v1/incidents/NOPE", json={"facts": {"delay_minutes": 60, "flight": "X1"}}
    )
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]
    client.post("/v1/incidents", json=body(runtime, delay=30))
    bad = client.patch(
        "/v1/incidents/MG123-2026-11-23",
        json={"facts": {"delay_minutes": 60, "flight": "MG123"}, "customers": ["ghost"]},
    )
    assert bad.status_code == 422 and "ghost" in bad.json()["detail"]
    assert runtime.ledger.count("MG123-2026-11-23") == 25
    assert runtime.ledger.incident("MG123-2026-11-23")["step"] == 1  # type: ignore[index]
    assert client.get("/v1/incidents/NOPE/decisions").status_code == 404


def test_entitlements_are_shown_beside_the_perk(client: TestClient[Any], runtime: Runtime) -> None:
    facts = {
        "delay_minutes": 250,
        "flight": "MG123",
        "origin": "LHR",
        "destination": "TPE",
        "carrier_country": "GB",
        "arrival_delay_minutes": 250,
    }
    data = client.post("/v1/incidents", json=body(runtime, facts=facts)).json()
    decision = next(d for d in data["decisions"] if d["perk"] is not None)
    regimes = {(e["regime"], e["kind"]) for e in decision["entitlements"]}
    assert ("UK261", "cash") in regimes
    cash = next(e for e in decision["entitlements"] if e["kind"] == "cash")
    assert cash["currency"] == "GBP" and cash["amount"] == 520.0 and "UK261" in cash["basis"]
    assert decision["perk"]["id"]  # the goodwill perk comes on top, never instead


def test_entitlements_need_the_route(client: TestClient[Any], runtime: Runtime) -> None:
    data = client.post("/v1/incidents", json=body(runtime)).json()
    assert data["decisions"][0]["entitlements"] == []
    assert any("entitlements not assessed" in r for r in data["decisions"][0]["reasons"])


def test_unknown_airport_is_a_422_naming_the_field(
    client: TestClient[Any], runtime: Runtime
) -> None:
    facts = {
        "delay_minutes": 200,
        "flight": "MG123",
        "origin": "QQQ",
        "destination": "TPE",
        "carrier_country": "GB",
    }
    response = client.post("/v1/incidents", json=body(runtime, facts=facts))
    assert response.status_code == 422 and "facts.origin" in response.json()["detail"]
    assert runtime.ledger.incident("MG123-2026-11-23") is None


def test_incident_status_sums_the_steps(client: TestClient[Any], runtime: Runtime) -> None:
    client.post("/v1/incidents", json=body(runtime, delay=30, budget=1000.0))
    client.patch(
        "/v1/incidents/MG123-2026-11-23", json={"facts": {"delay_minutes": 60, "flight": "MG123"}}
    )
    status = client.get("/v1/incidents/MG123-2026-11-23").json()
    assert (status["step"], status["decisions"], status["budget"]) == (2, 50, 1000.0)
    assert [s["step"] for s in status["steps"]] == [1, 2]
    assert status["steps"][0]["apologies"] == 25 and status["steps"][1]["apologies"] == 0
    assert status["spent"] == pytest.approx(sum(s["cost"] for s in status["steps"]))
    assert status["spent"] == pytest.approx(runtime.ledger.spent("MG123-2026-11-23"))
    assert client.get("/v1/incidents/NOPE").status_code == 404


def test_decisions_as_ndjson_and_parquet(client: TestClient[Any], runtime: Runtime) -> None:
    import io

    import polars as pl

    client.post("/v1/incidents", json=body(runtime, delay=30))
    url = "/v1/incidents/MG123-2026-11-23/decisions"
    lines = client.get(url, params={"limit": 10}, headers={"accept": "application/x-ndjson"})
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    assert lines.headers["x-total-count"] == "25" and lines.headers["x-next-offset"] == "10"
    rows = [json.loads(line) for line in lines.text.splitlines()]
    assert len(rows) == 10 and rows[0]["segment"]["name"]
    parquet = client.get(url, headers={"accept": "application/vnd.apache.parquet"})
    frame = pl.read_parquet(io.BytesIO(parquet.content))
    assert frame.height == 25 and {"customer_id", "perk_id", "text"} <= set(frame.columns)
    as_json = client.get(url).json()["decisions"]
    assert [r["customer_id"] for r in as_json[:10]] == [r["customer_id"] for r in rows]


def test_preview_records_nothing(client: TestClient[Any], runtime: Runtime) -> None:
    customer = runtime.book.frame["customer_id"][0]
    request = {
        "kind": "flight_delay",
        "occurred_at": "2026-11-23T07:05:00Z",
        "facts": {"delay_minutes": 50, "flight": "MG9"},
        "customer_id": customer,
    }
    first = client.post("/v1/decisions/preview", json=request)
    assert first.status_code == 200, first.text
    decision = first.json()
    assert decision["customer_id"] == customer and decision["message"]["kind"] == "apology"
    assert runtime.ledger.incident("preview") is None and runtime.ledger.count("preview") == 0
    quiet = client.post(
        "/v1/decisions/preview", json=request | {"facts": {"delay_minutes": 5, "flight": "MG9"}}
    )
    assert quiet.status_code == 422 and "noticeability" in quiet.json()["detail"]
    unknown = client.post("/v1/decisions/preview", json=request | {"customer_id": "ghost"})
    assert unknown.status_code == 422 and "ghost" in unknown.json()["detail"]


def test_a_remembered_preview_is_answered_as_the_first(
    client: TestClient[Any], runtime: Runtime
) -> None:
    """The second preview of a situation is spliced from the first's JSON: same answer,
    same headers."""
    request = {
        "kind": "flight_delay",
        "occurred_at": "2026-11-23T07:05:00Z",
        "facts": {"delay_minutes": 50, "flight": "MG9"},
        "customer_id": runtime.book.frame["customer_id"][0],
    }
    first = client.post("/v1/decisions/preview", json=request)
    again = client.post("/v1/decisions/preview", json=request)
    assert runtime.previews.hits == 1 and again.status_code == 200
    assert again.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert again.json() == first.json()


def test_preview_inside_an_incident_sees_only_that_customers_history(
    client: TestClient[Any], runtime: Runtime
) -> None:
    """A decided customer previews the stored decision; a customer the incident does not
    have yet previews a fresh apology; the ledger is unchanged either way."""
    client.post("/v1/incidents", json=body(runtime, delay=60, n=25))
    stored = client.get("/v1/incidents/MG123-2026-11-23/decisions").json()["decisions"]
    request = body(runtime, delay=60) | {"customer_id": stored[3]["customer_id"]}
    del request["customers"]
    seen = client.post("/v1/decisions/preview", json=request).json()
    assert seen["perk"] == stored[3]["perk"] and seen["step"] == stored[3]["step"] == 2
    outsider = runtime.book.frame["customer_id"][100]
    fresh = client.post("/v1/decisions/preview", json=request | {"customer_id": outsider}).json()
    assert fresh["customer_id"] == outsider and fresh["message"]["kind"] == "apology"
    later = client.post(
        "/v1/decisions/preview", json=request | {"facts": {"delay_minutes": 200, "flight": "MG123"}}
    ).json()
    assert later["step"] > 2 and later["message"]["kind"] == "update"
    assert runtime.ledger.count("MG123-2026-11-23") == 25


def test_followups_feed(client: TestClient[Any], runtime: Runtime) -> None:
    """Paging and polling: tests/test_followups_feed.py."""
    client.post("/v1/incidents", json=body(runtime, delay=30))
    soon = client.get("/v1/followups", params={"due_before": "2000-01-01T00:00:00Z"}).json()
    assert soon == {"followups": [], "next_cursor": None, "more": False}
    naive = client.get("/v1/followups", params={"due_before": "2100-01-01T00:00:00"})
    assert naive.status_code == 400 and "due_before" in naive.json()["detail"]


def test_idempotency_key(client: TestClient[Any], runtime: Runtime) -> None:
    headers = {"Idempotency-Key": "desk-42"}
    first = client.post("/v1/incidents", json=body(runtime), headers=headers)
    again = client.post("/v1/incidents", json=body(runtime), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()  # the stored response, "issued" included
    other = client.post("/v1/incidents", json=body(runtime, delay=120), headers=headers)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]
    assert runtime.ledger.count("MG123-2026-11-23") == 25


def test_other_incident_kinds(client: TestClient[Any], runtime: Runtime) -> None:
    bag = body(runtime, n=5) | {
        "incident_id": "BAG-1",
        "kind": "lost_baggage",
        "facts": {"delay_minutes": 1500, "reference": "bag TPE123456"},
    }
    data = client.post("/v1/incidents", json=bag).json()
    assert data["step"] == 2  # one step per day a bag is missing, from the first minute
    decision = data["decisions"][0]
    assert "TPE123456" in decision["message"]["text"] and decision["entitlements"] == []
    wrong = client.post("/v1/incidents", json=bag | {"facts": {"delay_minutes": 5, "flight": "X"}})
    assert wrong.status_code == 422 and "facts" in wrong.json()["detail"]


def test_a_delay_becomes_a_cancellation(client: TestClient[Any], runtime: Runtime) -> None:
    client.post("/v1/incidents", json=body(runtime, delay=60))
    patched = client.patch(
        "/v1/incidents/MG123-2026-11-23",
        json={"kind": "cancellation", "facts": {"delay_minutes": 200, "flight": "MG123"}},
    )
    assert patched.status_code == 200 and patched.json()["step"] == 5
    assert client.get("/v1/incidents/MG123-2026-11-23").json()["kind"] == "cancellation"
    bad = client.patch(
        "/v1/incidents/MG123-2026-11-23", json={"facts": {"delay_minutes": -1, "flight": "MG1"}}
    )
    assert bad.status_code == 422 and "facts.delay_minutes" in bad.json()["detail"]
    assert runtime.ledger.count("MG123-2026-11-23", 5) == 25
