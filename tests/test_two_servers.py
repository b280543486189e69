"""Two server processes on one data folder and one database: nothing issued twice."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from offers.ledger.db import create_engine
from tests.conftest import postgres_schema
from tests.servers import call, start


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None  # the server's own SQLite file in the data folder
        return
    with postgres_schema() as url:
        yield url


def test_two_servers_share_one_ledger_exactly_once(tmp_path: Path, database: str | None) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "MAKEGOOD_DATA": str(data)}
    env.pop("MAKEGOOD_DATABASE_URL", None)
    if database is not None:
        env["MAKEGOOD_DATABASE_URL"] = database
    first, a = start(env, tmp_path / "a.log")
    second, b = start(env, tmp_path / "b.log")
    try:
        key = (data / "local-admin.key").read_text().strip()
        ids = [f"c{i:06d}" for i in range(1, 201)]
        create = {
            "incident_id": "MG9-2026-11-25",
            "kind": "flight_delay",
            "occurred_at": "2026-11-25T07:00:00Z",
            "facts": {"delay_minutes": 30, "flight": "MG9"},
            "customers": ids,
        }
        with ThreadPoolExecutor(max_workers=8) as pool:
            creates = list(
                pool.map(
                    lambda i: call("POST", f"{(a, b)[i % 2]}/v1/incidents", key, create), range(8)
                )
            )
            patches = list(
                pool.map(
                    lambda i: call(
                        "PATCH",
                        f"{(a, b)[i % 2]}/v1/incidents/MG9-2026-11-25",
                        key,
                        {"facts": {"delay_minutes": 30 + 45 * (i % 3 + 1), "flight": "MG9"}},
                    ),
                    range(12),
                )
            )
    finally:
        for proc in (first, second):
            proc.terminate()
            proc.wait(timeout=30)
    assert all(status in (200, 201) for status, _ in creates + patches), creates + patches
    assert sum(r["issued"] for _, r in creates) == 200  # one server issued, the rest replayed
    codes = {
        json.dumps(
            sorted((d["customer_id"], (d["perk"] or {}).get("code")) for d in r["decisions"])
        )
        for _, r in creates
    }
    assert len(codes) == 1  # every caller saw the same stored decisions
    url = database or f"sqlite:///{data / 'makegood.db'}"
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT step, count(*), count(DISTINCT customer_id) FROM decisions "
                "WHERE incident_id = 'MG9-2026-11-25' GROUP BY step ORDER BY step"
            )
        ).all()
    engine.dispose()
    steps = {int(s) for s in range(1, 5)}
    assert {r[0] for r in rows} <= steps and rows[0][0] == 1
    assert all(r[1] == r[2] == 200 for r in rows)  # one row per customer per step
