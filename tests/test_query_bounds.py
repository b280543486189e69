"""Integers in query strings past what the databases hold are a 4xx naming the parameter."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime

HUGE = "99999999999999999999"


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/v1/incidents/B-1/decisions?offset=" + HUGE, "offset"),
        ("/v1/incidents/B-1/decisions?offset=9223372036854775808", "offset"),
        ("/v1/incidents/B-1/decisions?step=" + HUGE, "step"),
        ("/v1/incidents/B-1/decisions?step=2147483648", "step"),
        ("/v1/incidents/B-1/decisions?limit=" + HUGE, "limit"),
        ("/v1/followups?due_before=2026-12-01T00:00:00Z&limit=" + HUGE, "limit"),
    ],
)
def test_huge_integers_are_refused_by_name(
    client: TestClient[Any], runtime: Runtime, path: str, parameter: str
) -> None:
    customers = runtime.book.frame["customer_id"].to_list()[:3]
    created = client.post(
        "/v1/incidents",
        json={
            "incident_id": "B-1",
            "kind": "flight_delay",
            "occurred_at": "2026-11-23T07:05:00Z",
            "facts": {"delay_minutes": 60, "flight": "MG1"},
            "customers": customers,
        },
    )
    assert created.status_code == 201
    answer = client.get(path)
    assert 400 <= answer.status_code < 500, answer.text
    assert parameter in answer.json()["detail"]


def test_the_largest_offset_is_an_empty_page(client: TestClient[Any], runtime: Runtime) -> None:
    customers = runtime.book.frame["customer_id"].to_list()[:3]
    client.post(
        "/v1/incidents",
        json={
            "incident_id": "B-2",
            "kind": "flight_delay",
            "occurred_at": "2026-11-23T07:05:00Z",
            "facts": {"delay_minutes": 60, "flight": "MG1"},
            "customers": customers,
        },
    )
    page = client.get(f"/v1/incidents/B-2/decisions?offset={2**63 - 1}&step={2**31 - 1}")
    assert page.status_code == 200
    assert page.json()["decisions"] == [] and page.json()["total"] == 0
