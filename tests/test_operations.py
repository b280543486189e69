"""Operations: per-key rate limits, the audit log of changes, Prometheus metrics."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from api.admin.session import CSRF_FIELD, LOGIN_COOKIE
from api.app import create_app
from api.http.metrics import record_outcome
from api.keys import KeyStore
from api.limits import Limits
from api.runtime import Runtime
from offers.catalog.tables import DEFAULTS

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def key(runtime: Runtime, role: Any, name: str) -> dict[str, str]:
    secret = KeyStore(runtime.engine).create(name, role, datetime.now(UTC))[1]
    return {"X-API-Key": secret}


def test_rate_limit_per_key_names_the_limit(runtime: Runtime) -> None:
    runtime.settings = msgspec.structs.replace(
        runtime.settings, limits=Limits(rate_per_second=0.5, rate_burst=3)
    )
    one, other = key(runtime, "marketing", "mei"), key(runtime, "marketing", "li")
    with TestClient(app=create_app(runtime)) as client:
        assert [client.get("/v1/perks", headers=one).status_code for _ in range(3)] == [200] * 3
        limited = client.get("/v1/perks", headers=one)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
        assert "0.5 requests per second" in limited.json()["detail"]
        assert client.get("/v1/perks", headers=other).status_code == 200  # per key
        assert client.get("/healthz").status_code == 200  # probes are never limited


def test_a_key_id_guessed_at_is_slowed_before_more_slow_hashes(runtime: Runtime) -> None:
    """Wrong secrets of a real key id each cost scrypt: after a burst, 429 for that key id at
    the API and on the admin sign-in form alike; an unknown key id costs no hash and stays 401
    (tests/test_lockouts.py: per key id and per address apart)."""
    runtime.settings = msgspec.structs.replace(
        runtime.settings, limits=Limits(failed_keys_per_minute=3)
    )
    good = key(runtime, "marketing", "mei")["X-API-Key"]
    key_id = good.split("_")[1]
    wrong = {"X-API-Key": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")}
    with TestClient(app=create_app(runtime)) as client:
        assert [client.get("/v1/perks", headers=wrong).status_code for _ in range(3)] == [401] * 3
        refused = client.get("/v1/perks", headers=wrong)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "20"
        assert f"wrong secrets for key {key_id}" in refused.json()["detail"]
        assert client.get("/v1/perks", headers={"X-API-Key": "mg_nope_nope"}).status_code == 401
        token = client.get("/admin/login").cookies[LOGIN_COOKIE]
        signed = client.post("/admin/login", data={"key": good, CSRF_FIELD: token})
        assert signed.status_code == 429 and f"for key {key_id}" in signed.text


def test_changes_by_marketing_are_audited_desk_calls_are_not(runtime: Runtime) -> None:
    mei, desk = key(runtime, "marketing", "mei"), key(runtime, "desk", "desk-1")
    admin = key(runtime, "admin", "root")
    body = (DEFAULTS / "offers.toml").read_text(encoding="utf-8")
    with TestClient(app=create_app(runtime)) as client:
        put = client.put("/v1/offer-tables/flight-delay/draft", content=body, headers=mei)
        assert put.status_code == 200
        published = client.post(
            "/v1/offer-tables/flight-delay/publish", json={"reason": "same"}, headers=mei
        )
        assert published.status_code == 200, published.text
        ids = runtime.book.frame["customer_id"].to_list()[:3]
        incident = {
            "incident_id": "A1",
            "kind": "flight_delay",
            "occurred_at": "2026-11-25T07:05:00Z",
            "facts": {"delay_minutes": 50, "flight": "A1"},
            "customers": ids,
        }
        assert client.post("/v1/incidents", json=incident, headers=desk).status_code == 201
        # POSTs that change nothing are not changes, whoever sends them
        facts = {k: v for k, v in incident.items() if k not in ("incident_id", "customers")}
        look = {**facts, "customer_id": ids[0]}
        assert client.post("/v1/decisions/preview", json=look, headers=admin).status_code == 200
        checked = client.post("/v1/offer-tables/flight-delay/validate?version=live", headers=mei)
        assert checked.status_code == 200, checked.text
        entries = client.get("/v1/audit", headers=admin).json()
    assert [(e["key_name"], e["method"], e["path"]) for e in entries] == [
        ("mei", "POST", "/v1/offer-tables/flight-delay/publish"),
        ("mei", "PUT", "/v1/offer-tables/flight-delay/draft"),
    ]
    assert entries[0]["status_code"] == 200 and entries[0]["role"] == "marketing"
    assert "flight-delay v1" in entries[0]["before"] and "flight-delay v2" in entries[0]["after"]


def test_metrics_are_open_and_count_requests_and_outcomes(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    with TestClient(app=create_app(runtime)) as client:
        client.get("/v1/perks", headers=admin_headers)
        record_outcome("flight_delay", issued=3, perks=2, cost=16.0, budget_refusals=1)
        text = client.get("/metrics").text
    assert 'path="/v1/perks"' in text and "makegood_request_duration_seconds_bucket" in text
    assert 'makegood_decisions_total{kind="flight_delay"}' in text
    assert 'makegood_budget_refusals_total{kind="flight_delay"}' in text
    assert "/metrics" not in client.app.openapi_schema.paths  # type: ignore[operator]


def requests_counted(text: str, path: str) -> dict[tuple[str, str], float]:
    """(series, status) -> value of the request metrics of one route."""
    found = re.findall(
        r"^makegood_(requests_total|requests_error_total|request_duration_seconds_count)"
        rf'\{{app_name="makegood",method="\w+",path="{re.escape(path)}",'
        r'status_code="(\d+)"\} (\S+)$',
        text,
        re.M,
    )
    return {(series, status): float(n) for series, status, n in found}


def test_request_metrics_count_each_answer_by_route_and_status(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    """Every answer once in the count and the latency histogram of its route and status;
    nothing is in progress once answered."""
    with TestClient(app=create_app(runtime)) as client:
        before = requests_counted(client.get("/metrics").text, "/v1/perks")
        for _ in range(3):
            client.get("/v1/perks", headers=admin_headers)
        client.get("/v1/perks")  # no key: 401
        text = client.get("/metrics").text
    after = requests_counted(text, "/v1/perks")
    gained = {k: n for k, v in after.items() if (n := v - before.get(k, 0.0))}
    assert gained == {
        ("requests_total", "200"): 3.0,
        ("request_duration_seconds_count", "200"): 3.0,
        ("requests_total", "401"): 1.0,
        ("request_duration_seconds_count", "401"): 1.0,
    }
    busy = re.findall(r'^makegood_requests_in_progress\{.*path="/v1/perks".*\} (\S+)$', text, re.M)
    assert busy == ["0.0"]


def previews_counted(text: str) -> dict[str, float]:
    found = re.findall(r'^makegood_previews_total\{source="(\w+)"\} (\S+)$', text, re.M)
    return {source: float(n) for source, n in found}


def test_metrics_say_how_many_previews_came_from_memory(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    customer = runtime.book.frame["customer_id"][0]
    body = {
        "incident_id": "MET-1",
        "kind": "flight_delay",
        "occurred_at": "2026-11-25T07:05:00Z",
        "facts": {"delay_minutes": 100, "flight": "MG1"},
        "customer_id": customer,
    }
    with TestClient(app=create_app(runtime)) as client:
        before = previews_counted(client.get("/metrics").text)
        for _ in range(3):
            answer = client.post("/v1/decisions/preview", json=body, headers=admin_headers)
            assert answer.status_code == 200, answer.text
        after = previews_counted(client.get("/metrics").text)
    gained = {k: after[k] - before.get(k, 0.0) for k in after}
    assert gained == {"worked_out": 1.0, "memory": 2.0}
