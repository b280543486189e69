"""Two hosts on one PostgreSQL: limits hold in total, and a dead host's job is finished.

Each host is a real `makegood serve` with a data folder of its own (the same profiles and
model, copied as an operator would sync them), so nothing but the database joins them. To
kill host a mid-job at a known point without any test hook in the product, the test holds
a lock on the decisions table: a's job reaches its write and waits there, heartbeat and
all, until a is killed with SIGKILL; its transaction never commits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from api.keys import KeyStore
from offers.ledger.db import create_engine, upgrade
from tests.conftest import postgres_schema
from tests.servers import call, start

pytestmark = pytest.mark.postgres

LEASE = 3.0
RATE, BURST = 0.2, 10
WRONG_PER_MINUTE = 4


def until(check: Callable[[], Any], what: str, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"waited {timeout:g} s for {what}"
        time.sleep(0.1)
    return found


def test_two_hosts_share_limits_and_finish_the_job_of_a_host_killed_mid_way(
    tmp_path: Path,
) -> None:
    with postgres_schema() as url:
        engine = create_engine(url)
        upgrade(engine)
        store, now = KeyStore(engine), datetime.now(UTC)
        spender, desk, guessed = (store.create(n, "desk", now)[1] for n in ("s", "d", "g"))
        env = {
            **os.environ,
            "MAKEGOOD_DATABASE_URL": url,
            "MAKEGOOD_SYNC_LIMIT": "100",
            "MAKEGOOD_JOB_LEASE": str(LEASE),
            "MAKEGOOD_RATE": str(RATE),
            "MAKEGOOD_RATE_BURST": str(BURST),
            "MAKEGOOD_FAILED_KEYS_PER_MINUTE": str(WRONG_PER_MINUTE),
        }
        first, a = start({**env, "MAKEGOOD_DATA": str(tmp_path / "a")}, tmp_path / "a.log")
        for part in ("profiles", "models"):
            shutil.copytree(tmp_path / "a" / part, tmp_path / "b" / part)
        second: subprocess.Popen[bytes] | None = None
        try:
            second, b = start({**env, "MAKEGOOD_DATA": str(tmp_path / "b")}, tmp_path / "b.log")
            hosts = (a, b)

            # one key's requests, spread over both hosts, share one budget
            began = time.monotonic()
            codes = [call("GET", f"{hosts[i % 2]}/v1/incidents/nope", spender) for i in range(30)]
            elapsed = time.monotonic() - began
            statuses = [status for status, _ in codes]
            assert set(statuses) == {404, 429}, codes
            assert BURST <= statuses.count(404) <= BURST + 1 + RATE * elapsed, (statuses, elapsed)
            assert 429 in statuses[0::2] and 429 in statuses[1::2]  # on both hosts
            assert "0.2 requests per second" in codes[-1][1]["detail"]

            # so do one key id's wrong secrets
            wrong = guessed[:-4] + ("AAAA" if not guessed.endswith("AAAA") else "BBBB")
            began = time.monotonic()
            tries = [call("GET", f"{hosts[i % 2]}/v1/incidents/nope", wrong)[0] for i in range(8)]
            refills = int((time.monotonic() - began) * WRONG_PER_MINUTE / 60)
            assert tries.count(401) <= WRONG_PER_MINUTE + refills and tries[-2:] == [429, 429]

            # a job of host a, stopped at its write (the test holds the decisions table)...
            customers = [f"c{i:06d}" for i in range(1, 2001)]
            with engine.connect() as hold:
                held = hold.begin()
                hold.execute(sa.text("LOCK TABLE decisions IN EXCLUSIVE MODE"))
                status, accepted = call(
                    "POST",
                    f"{a}/v1/incidents",
                    desk,
                    {
                        "incident_id": "BIG-7",
                        "kind": "flight_delay",
                        "occurred_at": "2026-11-25T07:00:00Z",
                        "facts": {"delay_minutes": 50, "flight": "MG7"},
                        "customers": customers,
                    },
                )
                assert status == 202, accepted
                job_id = accepted["job_id"]
                until(lambda: waiting_writers(engine), "the job's write to wait for the lock")
                time.sleep(LEASE * 1.5)  # ...renews its heartbeat: b leaves it alone
                assert job(engine, job_id)["owner"].split("/")[1] == str(first.pid)
                first.kill()  # kill -9, mid-way
                first.wait(timeout=30)
                assert job(engine, job_id)["status"] == "running"
                held.rollback()

            # ...is claimed by host b after the lease and finished there, each decision once
            done = until(lambda: (j := job(engine, job_id))["status"] != "running" and j, "b")
            assert done["status"] == "done", done
            assert done["owner"].split("/")[1] == str(second.pid) and done["attempts"] == 2
            status, polled = call("GET", f"{b}/v1/jobs/{job_id}", desk)
            assert status == 200 and polled["status"] == "done"
            assert polled["result"]["issued"] == len(customers)
            with engine.connect() as conn:
                counts = conn.execute(
                    sa.text(
                        "SELECT step, count(*), count(DISTINCT customer_id) FROM decisions"
                        " WHERE incident_id = 'BIG-7' GROUP BY step"
                    )
                ).all()
            assert [tuple(r) for r in counts] == [(2, len(customers), len(customers))]
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=30)
            engine.dispose()


def waiting_writers(engine: sa.Engine) -> int:
    """Sessions waiting for the lock on `decisions`: the job has reached its write."""
    query = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'decisions'::regclass"
    with engine.connect() as conn:
        return int(conn.execute(sa.text(query)).scalar_one())


def job(engine: sa.Engine, job_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT status, owner, attempts, message FROM jobs WHERE job_id = :j"),
            {"j": job_id},
        ).one()
    return dict(row._mapping)
