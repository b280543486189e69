"""Background work with status and progress stored in the database.

A large incident is decided in a background thread of the worker that received it; its
progress lives in the `jobs` table, so whichever worker a client polls can answer, and a
job whose worker died is visible as stuck rather than silently lost.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import sqlalchemy as sa

from offers.ledger.schema import jobs
from offers.ledger.store import Ledger


class Job(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    kind: str
    subject: str
    status: Literal["queued", "running", "done", "failed"]
    progress: float
    message: str
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


def create(ledger: Ledger, kind: str, subject: str) -> str:
    job_id = secrets.token_hex(8)
    now = datetime.now(UTC)
    with ledger.engine.begin() as conn:
        conn.execute(
            jobs.insert().values(
                job_id=job_id,
                kind=kind,
                subject=subject,
                status="queued",
                progress=0.0,
                message="queued",
                created_at=now,
                updated_at=now,
            )
        )
    return job_id


def update(
    ledger: Ledger,
    job_id: str,
    *,
    status: str | None = None,
    progress: float | None = None,
    message: str | None = None,
    result: dict[str, Any] | None = None,
) -> None:
    values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
    if status is not None:
        values["status"] = status
    if progress is not None:
        values["progress"] = round(progress, 4)
    if message is not None:
        values["message"] = message
    if result is not None:
        values["result"] = msgspec.json.encode(result).decode()
    with ledger.engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.job_id == job_id).values(**values))


def get(ledger: Ledger, job_id: str) -> Job | None:
    with ledger.engine.connect() as conn:
        row = conn.execute(sa.select(jobs).where(jobs.c.job_id == job_id)).mappings().first()
    if row is None:
        return None
    data = dict(row)
    data["result"] = msgspec.json.decode(data["result"]) if data["result"] else None
    for key in ("created_at", "updated_at"):
        if data[key].tzinfo is None:
            data[key] = data[key].replace(tzinfo=UTC)
    return Job(**data)
