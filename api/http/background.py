"""Run large incident updates in a background thread, and finish those of workers that died.

The job's row in the database says queued / running / done / failed, holds the final counts
and the job's input, and carries a heartbeat the running worker renews every third of the
lease (`MAKEGOOD_JOB_LEASE`, 30 s). Every server watches for unfinished jobs whose heartbeat
is older than the lease, at start and every half lease: one claims such a job atomically
and runs it again from its input; decisions already in the ledger are not issued twice.
While a job runs, its worker also keeps its finer progress in memory, so a poll that
reaches the same worker sees the current phase.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import polars as pl
from sqlalchemy.exc import SQLAlchemyError

from api.http.wire import JobAccepted
from api.runtime import Runtime
from offers.flow import UnknownCustomers, apply_update
from offers.incidents import Incident, facts_type
from offers.ledger import jobs
from offers.selectors import Selector, resolve

log = logging.getLogger("makegood")

#: A job whose servers died this many times while running it is given up, not started again:
#: it may be what kills them.
MAX_STARTS = 3

_live: dict[str, tuple[str, float]] = {}
_lock = threading.Lock()


class IncidentWork(msgspec.Struct, frozen=True, kw_only=True):
    """What a job needs to decide its incident again, on any worker: the update as accepted."""

    incident_id: str
    kind: str
    occurred_at: datetime
    facts: dict[str, Any]
    customers: list[str]
    budget: float | None
    must_exist: bool
    accepted_at: datetime
    #: Who is affected when named by a selector (then `customers` is empty): resolved by
    #: the update under the incident's lock, again by a worker that takes the job over.
    selector: Selector | None = None

    @classmethod
    def of(
        cls,
        incident: Incident,
        customers: Sequence[str] | Selector,
        budget: float | None,
        must_exist: bool,
        accepted_at: datetime,
    ) -> IncidentWork:
        selector = customers if isinstance(customers, Selector) else None
        return cls(
            incident_id=incident.incident_id,
            kind=incident.kind,
            occurred_at=incident.occurred_at,
            facts=msgspec.to_builtins(incident.facts),
            customers=[] if isinstance(customers, Selector) else list(customers),
            budget=budget,
            must_exist=must_exist,
            accepted_at=accepted_at,
            selector=selector,
        )

    def customer_ids(self, runtime: Runtime) -> list[str] | Callable[[], pl.Series]:
        """What `apply_update` takes: the ids, or the selector to resolve over the profiles."""
        selector = self.selector
        if selector is None:
            return self.customers
        return lambda: resolve(selector, runtime.book.frame)

    def incident(self) -> Incident:
        facts = msgspec.convert(self.facts, facts_type(self.kind))
        return Incident(
            incident_id=self.incident_id, kind=self.kind, occurred_at=self.occurred_at, facts=facts
        )


def live_progress(job_id: str) -> tuple[str, float] | None:
    with _lock:
        return _live.get(job_id)


def _owner() -> str:
    """Who runs a job, for this one run: host and process (for the operator), and a token."""
    return f"{socket.gethostname()[:80]}/{os.getpid()}/{secrets.token_hex(4)}"


def start_incident_job(
    runtime: Runtime,
    incident: Incident,
    customer_ids: Sequence[str] | Selector,
    budget: float | None,
    *,
    must_exist: bool = False,
) -> str:
    """Queue the update and return the job id at once; the decisions land in the ledger."""
    work = IncidentWork.of(incident, customer_ids, budget, must_exist, datetime.now(UTC))
    owner = _owner()
    job_id = jobs.create(
        runtime.ledger, "incident", incident.incident_id, msgspec.json.encode(work), owner
    )
    _launch(runtime, job_id, owner, work)
    return job_id


def incident_job(
    runtime: Runtime,
    incident: Incident,
    customers: list[str] | Selector,
    budget: float | None,
    *,
    must_exist: bool = False,
) -> JobAccepted:
    """Refuse unknown listed customers, then start the job: the 202's body."""
    unknown = runtime.book.unknown(customers) if isinstance(customers, list) else []
    if unknown:
        raise UnknownCustomers(unknown)
    job_id = start_incident_job(runtime, incident, customers, budget, must_exist=must_exist)
    url = f"/v1/jobs/{job_id}"
    return JobAccepted(job_id=job_id, incident_id=incident.incident_id, status_url=url)


def _launch(runtime: Runtime, job_id: str, owner: str, work: IncidentWork) -> None:
    """Run the job in a thread of this worker, renewing its heartbeat while it runs."""
    ledger, lease = runtime.ledger, runtime.settings.job_lease
    stop = threading.Event()

    def report(message: str, done: float) -> None:
        with _lock:
            _live[job_id] = (message, done)

    def beat() -> None:
        while not stop.wait(lease / 3):
            message, done = live_progress(job_id) or (None, None)
            try:
                held = jobs.update(ledger, job_id, owner=owner, message=message, progress=done)
            except SQLAlchemyError as exc:  # the database is away: try again next beat
                log.warning("job %s heartbeat failed: %s", job_id, type(exc).__name__)
                continue
            if not held:
                log.warning("job %s was taken over by another worker; leaving it", job_id)
                return

    def run() -> None:
        threading.Thread(target=beat, name=f"job-{job_id}-heartbeat", daemon=True).start()
        try:
            _run(runtime, job_id, owner, work, report)
        finally:
            stop.set()
            with _lock:
                _live.pop(job_id, None)

    threading.Thread(target=run, name=f"job-{job_id}", daemon=True).start()


def _run(runtime: Runtime, job_id: str, owner: str, work: IncidentWork, report: Any) -> None:
    ledger = runtime.ledger
    if not jobs.update(ledger, job_id, owner=owner, status="running", message="running"):
        return
    try:
        outcome = apply_update(
            runtime.parts(),
            work.incident(),
            work.customer_ids(runtime),
            work.accepted_at,
            must_exist=work.must_exist,
            budget=work.budget,
            progress=report,
        )
    except Exception as exc:  # a job reports its failure instead of dying silently
        log.exception("job %s failed", job_id)
        jobs.update(ledger, job_id, owner=owner, status="failed", message=str(exc)[:500])
        return
    jobs.update(
        ledger,
        job_id,
        owner=owner,
        status="done",
        progress=1.0,
        message=f"step {outcome.step}: {outcome.issued:,} decisions issued",
        result={
            "incident_id": outcome.incident_id,
            "step": outcome.step,
            "issued": outcome.issued,
            "spent": round(outcome.spent, 2),
            "decisions_url": f"/v1/incidents/{outcome.incident_id}/decisions?step={outcome.step}",
        },
    )
    log.info("job %s done incident=%s issued=%d", job_id, outcome.incident_id, outcome.issued)


class JobWatcher:
    """Finishes the jobs of workers that died: looks at start, then every half lease."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._watch, name="job-watcher", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while True:
            try:
                self.take_over()
            except SQLAlchemyError as exc:  # the database is away: look again later
                log.warning("job watcher: database unavailable: %s", type(exc).__name__)
            except Exception:  # a bug must not end the watching
                log.exception("job watcher failed")
            if self._stop.wait(self.runtime.settings.job_lease / 2):
                return

    def take_over(self) -> list[str]:
        """Claim every stale job and run it here; the ids of those claimed."""
        ledger, lease = self.runtime.ledger, self.runtime.settings.job_lease
        claimed = []
        for job_id in jobs.stale(ledger, lease):
            owner = _owner()
            found = jobs.claim(ledger, job_id, owner, lease, "taken over: its worker stopped")
            if found is None:
                continue  # another worker was quicker
            claimed.append(job_id)
            starts, raw = found
            if raw is None:
                problem = (
                    "its server stopped before it finished, and it was queued before jobs "
                    "could be resumed: resubmit the same call (only missing decisions are issued)"
                )
            elif starts > MAX_STARTS:
                problem = (
                    f"its servers stopped {MAX_STARTS} times while running it: resubmit the "
                    "same call once the cause is found (only missing decisions are issued)"
                )
            else:
                try:
                    work = msgspec.json.decode(raw, type=IncidentWork)
                except msgspec.MsgspecError as exc:
                    problem = f"its stored input cannot be read ({exc}): resubmit the same call"
                else:
                    log.warning("job %s taken over (start %d of %d)", job_id, starts, MAX_STARTS)
                    _launch(self.runtime, job_id, owner, work)
                    continue
            log.warning("job %s failed: %s", job_id, problem)
            jobs.update(ledger, job_id, owner=owner, status="failed", message=problem)
        return claimed
