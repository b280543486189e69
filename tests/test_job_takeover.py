"""A background job whose worker died is claimed by one other worker and finished, once.

A dead worker is one that stopped renewing its job's heartbeat: the job row is left as it
would be after a `kill -9` (tests/test_several_hosts.py kills a real server).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import msgspec
import sqlalchemy as sa

from api.http.background import IncidentWork, JobWatcher
from api.runtime import Runtime
from offers.incidents.kinds import FlightFacts, Incident
from offers.ledger import jobs
from offers.ledger.schema import jobs as jobs_table


def left_by_a_dead_worker(
    runtime: Runtime, incident_id: str, customers: list[str], *, attempts: int = 1
) -> str:
    """A running job as its worker left it when it died, its heartbeat a minute old."""
    incident = Incident(
        incident_id=incident_id,
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 23, 7, tzinfo=UTC),
        facts=FlightFacts(delay_minutes=50, flight="MG1"),
    )
    accepted = datetime.now(UTC) - timedelta(minutes=1)
    work = IncidentWork.of(incident, customers, None, False, accepted)
    job_id = jobs.create(
        runtime.ledger, "incident", incident_id, msgspec.json.encode(work), "gone/1/dead"
    )
    with runtime.engine.begin() as conn:
        conn.execute(
            jobs_table.update()
            .where(jobs_table.c.job_id == job_id)
            .values(status="running", heartbeat=accepted, attempts=attempts)
        )
    return job_id


def finished(runtime: Runtime, job_id: str, timeout: float = 60.0) -> jobs.Job:
    deadline = time.monotonic() + timeout
    while True:
        job = jobs.get(runtime.ledger, job_id)
        assert job is not None
        if job.status in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, f"job stuck: {job}"
        time.sleep(0.05)


def test_a_dead_workers_job_is_taken_over_by_one_worker_and_finished(runtime: Runtime) -> None:
    ids = runtime.book.frame["customer_id"].to_list()[:500]
    job_id = left_by_a_dead_worker(runtime, "DEAD-1", ids)
    live = jobs.create(runtime.ledger, "incident", "ALIVE-1", b"{}", "here/2/live")
    watchers = [JobWatcher(runtime) for _ in range(6)]  # six workers look at once
    with ThreadPoolExecutor(max_workers=6) as pool:
        claims = list(pool.map(lambda w: w.take_over(), watchers))
    assert sorted(claims) == [[]] * 5 + [[job_id]]  # one claims it; the live job stays put
    job = finished(runtime, job_id)
    assert job.status == "done", job.message
    assert job.result is not None and job.result["issued"] == 500
    assert job.attempts == 2 and job.owner is not None and job.owner != "gone/1/dead"
    decided = runtime.ledger.decisions("DEAD-1")
    assert decided.height == 500 and decided["customer_id"].n_unique() == 500
    # the dead worker, should it come back, can no longer write the job's state
    assert not jobs.update(runtime.ledger, job_id, owner="gone/1/dead", status="failed")
    assert jobs.get(runtime.ledger, job_id).status == "done"  # type: ignore[union-attr]
    assert jobs.get(runtime.ledger, live).owner == "here/2/live"  # type: ignore[union-attr]
    with runtime.engine.connect() as conn:
        kept = conn.execute(sa.select(jobs_table.c.input).where(jobs_table.c.job_id == job_id))
        assert kept.scalar_one() is None  # an ended job forgets its input
        decided_at = conn.execute(
            sa.text("SELECT max(created_at) FROM decisions WHERE incident_id = 'DEAD-1'")
        ).scalar_one()
    if isinstance(decided_at, str):  # SQLite keeps the UTC time as text
        decided_at = datetime.fromisoformat(decided_at).replace(tzinfo=UTC)
    # decided as of when the update was accepted, not when it was taken over
    assert decided_at < datetime.now(UTC) - timedelta(seconds=30)


def test_a_job_that_keeps_killing_its_workers_is_given_up(runtime: Runtime) -> None:
    ids = runtime.book.frame["customer_id"].to_list()[:5]
    job_id = left_by_a_dead_worker(runtime, "DEAD-2", ids, attempts=3)
    assert JobWatcher(runtime).take_over() == [job_id]
    job = finished(runtime, job_id)
    assert job.status == "failed" and "stopped 3 times" in job.message
    assert runtime.ledger.incident("DEAD-2") is None


def test_a_job_without_its_input_fails_saying_to_resubmit(runtime: Runtime) -> None:
    """Jobs queued before jobs kept their input cannot be run again: they fail, not hang."""
    job_id = jobs.create(runtime.ledger, "incident", "OLD-1")
    with runtime.engine.begin() as conn:
        conn.execute(
            jobs_table.update()
            .where(jobs_table.c.job_id == job_id)
            .values(status="running", heartbeat=datetime.now(UTC) - timedelta(hours=1))
        )
    assert JobWatcher(runtime).take_over() == [job_id]
    job = jobs.get(runtime.ledger, job_id)
    assert job is not None and job.status == "failed" and "resubmit" in job.message
