"""kill -9 of a server in the middle of a 200,000-customer incident: restart, resubmit, and
the ledger holds every decision exactly once (each step is one transaction)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from offers.db import create_engine
from segmentation.synth import synth_profiles, write_profiles

ROOT = Path(__file__).resolve().parents[1]
N = 200_000


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    with log.open("a") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
                if response.status == 200:
                    return proc, base
        except (urllib.error.URLError, ConnectionError):
            pass
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.3)


def _call(method: str, url: str, key: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    request = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_kill_9_mid_incident_then_resubmit_is_exactly_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "profiles").mkdir(parents=True)
    write_profiles(synth_profiles(N, 11), data / "profiles" / "snapshot-0001.parquet")
    env = {**os.environ, "MAKEGOOD_DATA": str(data), "MAKEGOOD_SYNC_LIMIT": "50000"}
    env.pop("MAKEGOOD_DATABASE_URL", None)
    log = tmp_path / "server.log"
    server, base = _start(env, log)
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
        status, job = _call("POST", f"{base}/v1/incidents", key, incident)
        assert status == 202, job  # a background job in this worker
        time.sleep(2.0)  # deciding or writing the step
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        with engine.connect() as conn:
            rows, distinct = conn.execute(count).one()
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert rows in (0, N) and rows == distinct  # the step is all or nothing
        server, base = _start(env, log)
        status, job = _call("POST", f"{base}/v1/incidents", key, incident)
        assert status == 202, job
        deadline = time.monotonic() + 180
        while (state := _call("GET", base + job["status_url"], key)[1])["status"] != "done":
            assert state["status"] != "failed" and time.monotonic() < deadline, state
            time.sleep(0.5)
        with engine.connect() as conn:
            assert tuple(conn.execute(count).one()) == (N, N)
    finally:
        server.kill()
        server.wait(timeout=30)
        engine.dispose()
