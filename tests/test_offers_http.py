"""Marketing's HTTP surface: perks, drafts, validation, publish, diff, rollback, messages.

A published table is live in the engine at once: the last test publishes through HTTP and
then decides an incident through the same client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime
from offers.catalog.tables import DEFAULTS, dump_table, load_default_table

BODY = (DEFAULTS / "offers.toml").read_text(encoding="utf-8")
TOML = {"content-type": "application/toml"}
MEAL_FOR_WARRIORS = BODY.replace(
    'when = { persona = "business" }\nperk = "lounge-1h"',
    'when = { persona = "business" }\nperk = "meal-12"',
)


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def test_perks_and_tables_are_listed(client: TestClient[Any]) -> None:
    perks = client.get("/v1/perks").json()
    assert {p["id"] for p in perks} >= {"lounge-1h", "meal-12"}
    lounge = next(p for p in perks if p["id"] == "lounge-1h")
    assert lounge["kind"] == "lounge_pass" and lounge["usable_now"] and lounge["stock"] == []
    tables = client.get("/v1/offer-tables").json()
    assert [(t["name"], t["live"], t["draft"]) for t in tables] == [("flight-delay", True, False)]
    versions = client.get("/v1/offer-tables/flight-delay/versions").json()
    assert [(v["version"], v["published_by"]) for v in versions] == [(1, "tests")]
    one = client.get("/v1/offer-tables/flight-delay/versions/1").json()
    assert one["body"] == BODY and one["table"]["name"] == "flight-delay"
    paths = client.get("/schema/openapi.json").json()["paths"]
    assert {"/v1/perks", "/v1/offer-tables/{name}/draft", "/v1/messages/preview"} <= set(paths)


def test_draft_validate_diff_publish_rollback(client: TestClient[Any], runtime: Runtime) -> None:
    put = client.put(
        "/v1/offer-tables/flight-delay/draft",
        content=MEAL_FOR_WARRIORS,
        headers=TOML,
        params={"by": "mei"},
    )
    assert put.status_code == 200, put.text
    assert put.json()["draft"]["updated_by"] == "mei (key tests-admin)"
    findings = {(f["severity"], f["code"], f["perk"]) for f in put.json()["findings"]}
    assert findings == {
        ("warning", "unused-perk", "lounge-1h"),
        ("warning", "segment-uncovered", None),
    }
    assert put.json()["draft"]["based_on"] == 1
    assert client.get("/v1/offer-tables").json()[0]["draft"] is True
    checked = client.post("/v1/offer-tables/flight-delay/validate").json()
    assert checked["ok"] and checked["checked"] == "draft"
    diff = client.get("/v1/offer-tables/flight-delay/diff", params={"from": "1", "to": "draft"})
    assert diff.json()["changes"] == [
        {
            "change": "changed",
            "what": "rule",
            "id": "biz-lounge",
            "field": "perk",
            "before": "lounge-1h",
            "after": "meal-12",
        }
    ]
    published = client.post(
        "/v1/offer-tables/flight-delay/publish", json={"reason": "lounges full", "by": "mei"}
    )
    assert published.status_code == 200, published.text
    info = published.json()["info"]
    assert (info["version"], info["reason"]) == (2, "lounges full")
    assert info["published_by"] == "mei (key tests-admin)"  # the person and the key behind
    assert runtime.table_version == ("flight-delay", 2)
    back = client.post(
        "/v1/offer-tables/flight-delay/rollback", json={"version": 1, "reason": "undo"}
    )
    assert back.status_code == 200 and back.json()["info"]["reason"] == "rollback to v1: undo"
    assert back.json()["info"]["published_by"] == "tests-admin"  # the key, not "api"
    assert (
        runtime.table_version == ("flight-delay", 3)
        and runtime.tables.raw("flight_delay") == load_default_table()
    )
    same = client.get("/v1/offer-tables/flight-delay/diff", params={"from": "v1", "to": "live"})
    assert same.json()["changes"] == []


def test_a_json_draft_is_stored_as_toml(client: TestClient[Any]) -> None:
    import msgspec

    table = load_default_table()
    put = client.put(
        "/v1/offer-tables/flight-delay/draft",
        content=msgspec.json.encode(table),
        headers={"content-type": "application/json"},
    )
    assert put.status_code == 200, put.text
    assert (
        client.get("/v1/offer-tables/flight-delay/diff", params={"from": "1"}).json()["changes"]
        == []
    )
    assert put.json()["draft"]["body"] == dump_table(table)


BAD_PERK = BODY.replace('perk = "lounge-1h"', 'perk = "spa-day"')
GHOST = BODY.replace(
    'persona = "shopper" }\nperk = "dutyfree-5"',
    'segment = ["ghosts"] }\nperk = "dutyfree-5"',
)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("name = ", "not valid TOML"),
        (BODY.replace('name = "flight-delay"', 'name = "other"'), "field name"),
        (
            BODY.replace("when = { step = { min = 5 } }", 'when = { step = { min = "five" } }'),
            "rule long-delay-credit, field when.step",
        ),
        (
            BODY.replace(
                '{ persona = "family", step = { min = 5 }',
                '{ segment = ["lei,sure"], step = { min = 5 }',
            ),
            "rule family-meal-50, field when.segment",
        ),
    ],
)
def test_unreadable_drafts_are_422_naming_rule_and_field(
    client: TestClient[Any], body: str, detail: str
) -> None:
    response = client.put("/v1/offer-tables/flight-delay/draft", content=body, headers=TOML)
    assert response.status_code == 422, response.text
    assert detail in response.json()["detail"]
    assert client.get("/v1/offer-tables").json()[0]["draft"] is False


@pytest.mark.parametrize(
    ("body", "rule", "field", "code"),
    [
        (BAD_PERK, "biz-lounge", "perk", "unknown-perk"),
        (GHOST, "shopper-5", "when.segment", "unknown-segment"),
        (
            BODY.replace(
                '{ persona = "family", step = { min = 5 }',
                '{ gender = ["x"], step = { min = 5 }',
            ),
            "family-meal-50",
            "when.gender",
            "protected",
        ),
    ],
)
def test_publish_refuses_errors_with_every_finding(
    client: TestClient[Any], runtime: Runtime, body: str, rule: str, field: str, code: str
) -> None:
    put = client.put("/v1/offer-tables/flight-delay/draft", content=body, headers=TOML)
    assert put.status_code == 200  # a draft may hold errors: they stop publishing only
    assert (rule, field, code) in {
        (f["rule"], f["field"], f["code"]) for f in put.json()["findings"]
    }
    refused = client.post("/v1/offer-tables/flight-delay/publish", json={"reason": "try"})
    assert refused.status_code == 422
    payload = refused.json()
    assert f"rule {rule}, field {field}" in payload["detail"]
    assert any(f["rule"] == rule and f["field"] == field for f in payload["extra"]["findings"])
    assert runtime.table_version == ("flight-delay", 1)
    assert len(client.get("/v1/offer-tables/flight-delay/versions").json()) == 1


@pytest.mark.parametrize(
    ("method", "path", "payload", "status"),
    [
        ("GET", "/v1/offer-tables/nope/versions", None, 404),
        ("GET", "/v1/offer-tables/flight-delay/versions/9", None, 404),
        ("POST", "/v1/offer-tables/flight-delay/publish", {"reason": "no draft"}, 404),
        ("POST", "/v1/offer-tables/flight-delay/publish", {"by": "x"}, 400),
        ("POST", "/v1/offer-tables/flight-delay/rollback", {"version": 5, "reason": "x"}, 404),
        ("POST", "/v1/offer-tables/flight-delay/rollback", {"version": 0, "reason": "x"}, 400),
        ("POST", "/v1/offer-tables/flight-delay/validate", None, 404),
        ("GET", "/v1/offer-tables/flight-delay/diff?from=banana", None, 422),
        ("POST", "/v1/messages/preview", {"perk": "spa"}, 422),
        ("POST", "/v1/messages/preview", {"language": "fr"}, 400),
    ],
)
def test_client_mistakes_are_4xx_never_500(
    client: TestClient[Any], method: str, path: str, payload: Any, status: int
) -> None:
    response = client.request(method, path, json=payload)
    assert response.status_code in (status, 422 if status == 400 else status), response.text
    assert response.status_code < 500


def test_messages_are_listed_and_previewed(client: TestClient[Any]) -> None:
    listed = client.get("/v1/messages").json()
    assert listed["findings"] == [] and len(listed["templates"]) >= 15
    shown = client.post(
        "/v1/messages/preview",
        json={"language": "zh-Hant", "channel": "sms", "kind": "apology", "perk": "lounge-1h"},
    ).json()
    assert "一小時免費貴賓室通行證" in shown["text"] and shown["sms"]["segments"] <= 2
    assert shown["text_language"] == "zh-Hant" and shown["fallback"] is False


def test_a_published_table_is_live_without_restart(
    client: TestClient[Any], runtime: Runtime
) -> None:
    put = client.put("/v1/offer-tables/flight-delay/draft", content=MEAL_FOR_WARRIORS, headers=TOML)
    assert put.status_code == 200
    published = client.post("/v1/offer-tables/flight-delay/publish", json={"reason": "meals"})
    assert published.status_code == 200, published.text
    frame = runtime.book.frame
    warriors = frame.filter(frame["segment"] == "road-warrior")["customer_id"].to_list()[:5]
    incident = {
        "incident_id": "MG777-2026-11-25",
        "kind": "flight_delay",
        "occurred_at": "2026-11-25T07:05:00+08:00",
        "facts": {"delay_minutes": 30, "flight": "MG777", "origin": "TPE"},
        "customers": warriors,
    }
    created = client.post("/v1/incidents", json=incident)
    assert created.status_code == 201, created.text
    perks = {d["perk"]["id"] for d in created.json()["decisions"] if d["perk"]}
    assert perks == {"meal-12"}
