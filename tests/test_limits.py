"""Limits: oversized bodies and fields are refused with a status naming the limit."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.limits import Limits
from api.runtime import Runtime

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def incident(customers: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "incident_id": "MG1-2026-11-25",
        "kind": "flight_delay",
        "occurred_at": "2026-11-25T07:05:00Z",
        "facts": {"delay_minutes": 50, "flight": "MG1"},
        "customers": customers,
        **extra,
    }


def test_body_and_field_limits_are_named(runtime: Runtime, admin_headers: dict[str, str]) -> None:
    runtime.settings = msgspec.structs.replace(
        runtime.settings, limits=Limits(max_body_bytes=4_000)
    )
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        ids = runtime.book.frame["customer_id"].to_list()
        big = client.post("/v1/incidents", json=incident(ids[:1000]))
        assert big.status_code == 413 and "4,000 bytes" in big.json()["detail"]
        draft = client.put("/v1/offer-tables/t/draft", content=b"#" * 5_000)
        assert draft.status_code == 413
        long_id = client.post("/v1/incidents", json=incident(["c" * 65]))
        assert long_id.status_code == 422 and "customers" in long_id.json()["detail"]
        long_incident = client.post("/v1/incidents", json=incident(ids[:2], incident_id="x" * 500))
        assert long_incident.status_code == 422 and "incident_id" in long_incident.json()["detail"]
        naive = client.post("/v1/incidents", json=incident(ids[:2], occurred_at="2026-11-25T07:05"))
        assert naive.status_code == 422 and "occurred_at" in naive.json()["detail"]
        assert runtime.ledger.incident("MG1-2026-11-25") is None
