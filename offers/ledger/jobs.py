"""Background work with status and progress stored in the database.

A large incident is decided in a background thread of the worker that received it; its
progress lives in the `jobs` table, so whichever worker a client polls can answer. The row
also keeps the job's input and a heartbeat its worker renews: when a host dies, another
worker (on any host, or this one after a restart) finds the heartbeat older than the lease,
claims the job with one conditional UPDATE and runs it again. Re-running is safe because
the ledger writes each decision once.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
import sqlalchemy as sa

from offers.ledger.schema import jobs
from offers.ledger.store import Ledger

#: A job in one of these states is unfinished: someone must be running it.
UNFINISHED = ("queued", "running")


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
    owner: str | None = None
    heartbeat: datetime | None = None
    attempts: int = 1


def _clock(engine: sa.Engine, ago: float = 0.0) -> Any:
    """Now (less `ago` seconds) by the clock every host agrees on: PostgreSQL's; SQLite
    serves one host, whose clock it is."""
    if engine.dialect.name == "postgresql":
        return sa.func.now() - timedelta(seconds=ago) if ago else sa.func.now()
    return datetime.now(UTC) - timedelta(seconds=ago)


def create(
    ledger: Ledger,
    kind: str,
    subject: str,
    input: bytes | None = None,
    owner: str | None = None,
) -> str:
    """A queued job; with `input`, one any worker can run again should `owner` die."""
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
                input=input,
                owner=owner,
                heartbeat=_clock(ledger.engine),
                attempts=1,
            )
        )
    return job_id


def update(
    ledger: Ledger,
    job_id: str,
    *,
    owner: str | None = None,
    status: str | None = None,
    progress: float | None = None,
    message: str | None = None,
    result: dict[str, Any] | None = None,
) -> bool:
    """Record where the job is and renew its heartbeat. With `owner`, only while that worker
    still holds the job; returns whether it did (False: another worker took it over). A
    job that ends forgets its input."""
    values: dict[str, Any] = {
        "updated_at": datetime.now(UTC),
        "heartbeat": _clock(ledger.engine),
    }
    if status is not None:
        values["status"] = status
        if status not in UNFINISHED:
            values["input"] = None
    if progress is not None:
        values["progress"] = round(progress, 4)
    if message is not None:
        values["message"] = message
    if result is not None:
        values["result"] = msgspec.json.encode(result).decode()
    query = jobs.update().where(jobs.c.job_id == job_id)
    if owner is not None:
        query = query.where(jobs.c.owner == owner, jobs.c.status.in_(UNFINISHED))
    with ledger.engine.begin() as conn:
        return conn.execute(query.values(**values)).rowcount == 1


def stale(ledger: Ledger, lease: float) -> list[str]:
    """Unfinished jobs nobody has vouched for within `lease` seconds: their worker died."""
    query = sa.select(jobs.c.job_id).where(
        jobs.c.status.in_(UNFINISHED),
        sa.or_(jobs.c.heartbeat.is_(None), jobs.c.heartbeat < _clock(ledger.engine, lease)),
    )
    with ledger.engine.connect() as conn:
        return list(conn.execute(query.order_by(jobs.c.created_at)).scalars())


def claim(
    ledger: Ledger, job_id: str, owner: str, lease: float, message: str
) -> tuple[int, bytes | None] | None:
    """Take a stale job over for `owner`: how many workers have now started it and its
    input, or None when it is no longer stale (another worker was quicker, or it ended).

    One conditional UPDATE decides, so of several workers finding the same job one wins.
    """
    with ledger.engine.begin() as conn:
        taken = conn.execute(
            jobs.update()
            .where(
                jobs.c.job_id == job_id,
                jobs.c.status.in_(UNFINISHED),
                sa.or_(jobs.c.heartbeat.is_(None), jobs.c.heartbeat < _clock(ledger.engine, lease)),
            )
            .values(
                owner=owner,
                heartbeat=_clock(ledger.engine),
                attempts=jobs.c.attempts + 1,
                status="running",
                message=message,
                updated_at=datetime.now(UTC),
            )
        )
        if taken.rowcount != 1:
            return None
        row = conn.execute(
            sa.select(jobs.c.attempts, jobs.c.input).where(jobs.c.job_id == job_id)
        ).one()
    return int(row.attempts), (bytes(row.input) if row.input is not None else None)


_SHOWN = [c for c in jobs.c if c.name != "input"]


def get(ledger: Ledger, job_id: str) -> Job | None:
    with ledger.engine.connect() as conn:
        row = conn.execute(sa.select(*_SHOWN).where(jobs.c.job_id == job_id)).mappings().first()
    if row is None:
        return None
    data = dict(row)
    data["result"] = msgspec.json.decode(data["result"]) if data["result"] else None
    for key in ("created_at", "updated_at", "heartbeat"):
        if data[key] is not None and data[key].tzinfo is None:
            data[key] = data[key].replace(tzinfo=UTC)
    return Job(**data)
