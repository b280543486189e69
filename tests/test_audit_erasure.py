"""Erasing a customer leaves their id nowhere in the audit log: the erasure's own row and
the rows written before it name the pseudonym (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime
from offers.ledger.erasure import pseudonym
from offers.ledger.schema import audit_log


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    folder = runtime.settings.data_dir / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    profiles = runtime.book.frame.drop("segment", "segment_description", "_id_hash")
    profiles.write_parquet(folder / "snapshot-0001.parquet")
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def _audit_rows(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(audit_log))]


def _segments(rows: list[dict[str, Any]]) -> set[str]:
    """Every path segment and every other text the audit log holds."""
    found: set[str] = set()
    for row in rows:
        found.update(row["path"].split("/"))
        found.update(str(v) for k, v in row.items() if k != "path")
    return found


def test_erasure_leaves_the_id_nowhere_in_the_audit_log(
    client: TestClient[Any], runtime: Runtime
) -> None:
    who, other = runtime.book.frame["customer_id"].to_list()[:2]
    incident = {
        "incident_id": "MG9-2026-11-25",
        "kind": "flight_delay",
        "occurred_at": "2026-11-25T07:05:00Z",
        "facts": {"delay_minutes": 50, "flight": "MG9"},
        "customers": [who, other],
    }
    assert client.post("/v1/incidents", json=incident).status_code == 201
    assert client.get(f"/v1/profiles/{who}").status_code == 200
    assert client.get(f"/v1/profiles/{who}/export").status_code == 200

    assert client.delete(f"/v1/profiles/{who}").status_code == 200
    assert client.delete(f"/v1/profiles/{who}").status_code == 404  # asked again: still by alias

    audit = client.get("/v1/audit", params={"limit": 1000})
    assert audit.status_code == 200
    entries = audit.json()
    assert who not in audit.text
    erasures = [e["path"] for e in entries if e["method"] == "DELETE"]
    assert erasures == [f"/v1/profiles/{pseudonym(who)}"] * 2
    assert who not in _segments(_audit_rows(runtime))


def test_rows_written_before_the_erasure_are_rewritten_with_it(
    client: TestClient[Any], runtime: Runtime
) -> None:
    who, other = runtime.book.frame["customer_id"].to_list()[:2]
    earlier = [  # as an earlier release wrote them: a failed erasure, and two neighbours
        f"/v1/profiles/{who}",
        f"/v1/profiles/{who}/export",
        f"/v1/profiles/{who}9",  # another id that merely starts with this one
        f"/v1/profiles/{other}",
    ]
    with runtime.engine.begin() as conn:
        conn.execute(
            audit_log.insert(),
            [
                {
                    "at": datetime.now(UTC),
                    "key_id": "k1",
                    "key_name": "analyst",
                    "role": "analyst",
                    "method": "DELETE",
                    "path": path,
                    "status_code": 503,
                }
                for path in earlier
            ],
        )

    erased = client.delete(f"/v1/profiles/{who}")
    assert erased.status_code == 200, erased.text
    assert erased.json()["ledger_rows"]["audit_log"] == 2

    paths = {row["path"] for row in _audit_rows(runtime)}
    alias = pseudonym(who)
    assert paths == {
        f"/v1/profiles/{alias}",  # the failed one and the erasure itself
        f"/v1/profiles/{alias}/export",
        f"/v1/profiles/{who}9",
        f"/v1/profiles/{other}",
    }
    assert who not in _segments(_audit_rows(runtime))
