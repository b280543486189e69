"""A client's odd input is a 4xx, never a 500: JSON or TOML nested 100,000 deep, numbers no
database holds (versions, offsets, seeds, a cookie's expiry), and nothing is written.

All through litestar's TestClient over the real app and databases (SQLite and PostgreSQL,
whose INTEGER columns hold 32 bits).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime
from tests.test_admin_pages import csrf, make_key, sign_in

DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE = "99999999999999999999"  # past SQLite's 64-bit integers
HUGE_NUMBERS = [HUGE, "2147483648", "9" * 5000, "²"]  # PostgreSQL INTEGER; int()'s limit; not ASCII


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


# --- 500s where a 4xx belongs --------------------------------------------------------------------


def test_json_nested_100000_deep_is_a_4xx_on_every_json_body(
    client: TestClient[Any], runtime: Runtime
) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    bodies = [
        (method, re.sub(r"\{[^}]+\}", "x", path))
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert {("post", "/v1/incidents"), ("post", "/v1/feedback")} <= set(bodies)
    nested = b'{"facts": {"deep": ' + DEEP + b"}}"  # inside a free-form field, too
    for method, path in bodies:
        for body in (DEEP, nested):
            answer = client.request(
                method, path, content=body, headers={"content-type": "application/json"}
            )
            assert answer.status_code in (400, 422), (method, path, answer.text[:300])
    table = client.put(
        "/v1/offer-tables/flight-delay/draft",
        content=DEEP,
        headers={"content-type": "application/json"},
    )
    assert table.status_code == 400, table.text[:300]
    assert runtime.ledger.incident("x") is None


@pytest.mark.parametrize("nesting", ["[", "{a = "])
def test_a_deeply_nested_toml_draft_is_a_422_and_saves_nothing(
    client: TestClient[Any], nesting: str
) -> None:
    closing = "]" if nesting == "[" else "}"
    text = 'name = "flight-delay"\nx = ' + nesting * 100_000 + closing * 100_000 + "\n"
    before = client.get("/v1/offer-tables").json()
    answer = client.put(
        "/v1/offer-tables/flight-delay/draft",
        content=text.encode(),
        headers={"content-type": "application/toml"},
    )
    assert answer.status_code == 422, answer.text[:300]
    assert "nested too deeply" in answer.json()["detail"]
    assert client.get("/v1/offer-tables").json() == before


@pytest.mark.parametrize("number", HUGE_NUMBERS)
def test_a_version_number_no_database_holds_is_a_4xx(
    client: TestClient[Any], runtime: Runtime, number: str
) -> None:
    table = "/v1/offer-tables/flight-delay"
    answers = {
        "path": client.get(f"{table}/versions/{number}"),
        "validate": client.post(f"{table}/validate", params={"version": number}),
        "simulate": client.post(f"{table}/simulate", params={"version": f"v{number}"}),
        "diff": client.get(f"{table}/diff", params={"from": number}),
    }
    for where, answer in answers.items():
        assert answer.status_code in (404, 422), (where, answer.status_code, answer.text[:300])
        assert len(answer.text) < 1000  # the number is not echoed back whole
    assert client.get(f"{table}/versions/1").status_code == 200


@pytest.mark.parametrize("version", [217707510197040646717440, 2**31, 0])
def test_a_rollback_to_a_version_no_database_holds_is_a_422(
    client: TestClient[Any], runtime: Runtime, version: int
) -> None:
    answer = client.post(
        "/v1/offer-tables/flight-delay/rollback", json={"version": version, "reason": "back"}
    )
    assert answer.status_code == 422, answer.text
    assert "version" in answer.json()["detail"]
    assert runtime.table_version == ("flight-delay", 1)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "expiry", ["9" * 5000, "²", "1" + "0" * 30], ids=["5000 digits", "not ASCII", "30 digits"]
)
def test_an_admin_cookie_with_an_absurd_expiry_is_signed_out(runtime: Runtime, expiry: str) -> None:
    key_id = make_key(runtime, "marketing").split("_")[1]
    value = f"{key_id}.{expiry}.nonce.{'0' * 64}"
    with TestClient(app=create_app(runtime)) as client:
        answer = client.get(
            "/admin",
            headers={"cookie": f"mg_admin={value}".encode("latin-1")},  # type: ignore[dict-item]
            follow_redirects=False,
        )
    assert answer.status_code == 303, answer.text[:300]
    assert answer.headers["location"].startswith("/admin/login")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_admin_pages_read_numbers_no_database_holds_as_mistakes(runtime: Runtime) -> None:
    with TestClient(app=create_app(runtime)) as client:
        key = make_key(runtime, "admin")
        made = client.post(
            "/v1/incidents", json=_incident(runtime), headers={"Authorization": f"Bearer {key}"}
        )
        assert made.status_code == 201, made.text
        sign_in(client, key)
        for number in HUGE_NUMBERS:
            page = client.get("/admin/incidents/H1", params={"offset": number})
            assert page.status_code == 200, page.text[:300]
            preview = client.get("/admin/messages", params={"delay_minutes": number})
            assert preview.status_code == 422, preview.text[:300]
            table = client.get("/admin/offers/flight-delay").text
            back = client.post(
                "/admin/offers/flight-delay/rollback",
                data={"_csrf": csrf(table), "version": number, "reason": "back"},
            )
            assert back.status_code == 422 and "a number from 1" in back.text, back.text[:300]
            draft = client.post(
                "/admin/offers/flight-delay/draft",
                data={"_csrf": csrf(table), "rule_rows": number, "action": "check"},
            )
            assert draft.status_code < 500, draft.text[:300]
    assert runtime.table_version == ("flight-delay", 1)


def test_a_training_seed_numpy_cannot_take_is_a_422(client: TestClient[Any]) -> None:
    for seed in (int(HUGE), -1, 2**32):
        answer = client.post("/v1/segmentations", json={"seed": seed})
        assert answer.status_code == 422 and "seed" in answer.json()["detail"], answer.text
