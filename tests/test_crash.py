"""kill -9 of a server in the middle of a 200,000-customer incident: restart, resubmit, and
the ledger holds every decision exactly once (each step is one transaction)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import sqlalchemy as sa

from offers.ledger.db import create_engine
from segmentation.synth import synth_profiles, write_profiles
from tests.servers import call, start

N = 200_000


def test_kill_9_mid_incident_then_resubmit_is_exactly_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "profiles").mkdir(parents=True)
    write_profiles(synth_profiles(N, 11), data / "profiles" / "snapshot-0001.parquet")
    env = {**os.environ, "MAKEGOOD_DATA": str(data), "MAKEGOOD_SYNC_LIMIT": "50000"}
    env.pop("MAKEGOOD_DATABASE_URL", None)
    log = tmp_path / "server.log"
    server, base = start(env, log)
    key = (data / "local-admin.key").read_text().strip()
    incident = {
        "incident_id": "BIG-2026-11-25",
        "kind": "flight_delay",
        "occurred_at": "2026-11-25T07:05:00Z",
        "facts": {"delay_minutes": 50, "flight": "MG1"},
        "customers": [f"c{i:06d}" for i in range(1, N + 1)],
    }
    engine = create_engine(f"sqlite:///{data / 'makegood.db'}")
    count = sa.text("SELECT count(*), count(DISTINCT customer_id) FROM decisions")
    try:
        status, job = call("POST", f"{base}/v1/incidents", key, incident)
        assert status == 202, job  # a background job in this worker
        time.sleep(2.0)  # deciding or writing the step
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        with engine.connect() as conn:
            rows, distinct = conn.execute(count).one()
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert rows in (0, N) and rows == distinct  # the step is all or nothing
        server, base = start(env, log)
        status, job = call("POST", f"{base}/v1/incidents", key, incident)
        assert status == 202, job
        deadline = time.monotonic() + 180
        while (state := call("GET", base + job["status_url"], key)[1])["status"] != "done":
            assert state["status"] != "failed" and time.monotonic() < deadline, state
            time.sleep(0.5)
        with engine.connect() as conn:
            assert tuple(conn.execute(count).one()) == (N, N)
    finally:
        server.kill()
        server.wait(timeout=30)
        engine.dispose()
