"""Run large incident updates in a background thread and report where they are.

The job's row in the database says queued / running / done / failed and holds the final
counts; while it runs, this process also keeps its finer progress in memory, so a poll that
reaches the same worker sees the current phase.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from api.runtime import Runtime
from offers.flow import apply_update
from offers.incidents import Incident
from offers.ledger import jobs

log = logging.getLogger("makegood")

_live: dict[str, tuple[str, float]] = {}
_lock = threading.Lock()


def live_progress(job_id: str) -> tuple[str, float] | None:
    with _lock:
        return _live.get(job_id)


def start_incident_job(
    runtime: Runtime,
    incident: Incident,
    customer_ids: Sequence[str],
    budget: float | None,
    *,
    must_exist: bool = False,
) -> str:
    """Queue the update and return the job id at once; the decisions land in the ledger."""
    job_id = jobs.create(runtime.ledger, "incident", incident.incident_id)
    ids = list(customer_ids)

    def report(message: str, done: float) -> None:
        with _lock:
            _live[job_id] = (message, done)

    def run() -> None:
        jobs.update(runtime.ledger, job_id, status="running", message="running")
        try:
            outcome = apply_update(
                runtime.parts(),
                incident,
                ids,
                datetime.now(UTC),
                must_exist=must_exist,
                budget=budget,
                progress=report,
            )
        except Exception as exc:  # a job reports its failure instead of dying silently
            log.exception("job %s failed", job_id)
            jobs.update(runtime.ledger, job_id, status="failed", message=str(exc)[:500])
            return
        finally:
            with _lock:
                _live.pop(job_id, None)
        jobs.update(
            runtime.ledger,
            job_id,
            status="done",
            progress=1.0,
            message=f"step {outcome.step}: {outcome.issued:,} decisions issued",
            result={
                "incident_id": outcome.incident_id,
                "step": outcome.step,
                "issued": outcome.issued,
                "spent": round(outcome.spent, 2),
                "decisions_url": f"/v1/incidents/{outcome.incident_id}/decisions"
                f"?step={outcome.step}",
            },
        )
        log.info("job %s done incident=%s issued=%d", job_id, outcome.incident_id, outcome.issued)

    threading.Thread(target=run, name=f"job-{job_id}", daemon=True).start()
    return job_id
