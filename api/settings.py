"""Process settings, from flags and environment; nothing here decides anything."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from api.limits import Limits
from offers.ledger import sqlite_url


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path = Path("makegood-data")
    database_url: str | None = None
    #: Incidents touching more customers than this are decided as background jobs.
    sync_limit: int = 50_000
    #: Seconds a background job's heartbeat stays good: a job whose worker has not renewed
    #: it for longer is taken over by another worker (MAKEGOOD_JOB_LEASE).
    job_lease: float = 30.0
    #: Body, upload and rate limits (api/limits.py).
    limits: Limits = msgspec.field(default_factory=Limits)
    #: Seconds a worker may decide with posteriors read before (MAKEGOOD_LEARNING_REFRESH).
    learning_refresh: float = 2.0
    #: Seed of learning's draws, for reproducible runs (MAKEGOOD_SEED); None: random.
    seed: int | None = None

    @classmethod
    def from_env(cls, data_dir: Path | str | None = None) -> Settings:
        data = data_dir or os.environ.get("MAKEGOOD_DATA") or "makegood-data"
        lease = float(os.environ.get("MAKEGOOD_JOB_LEASE") or 30.0)
        if not lease > 0:
            raise ValueError("MAKEGOOD_JOB_LEASE: must be a positive number of seconds")
        return cls(
            data_dir=Path(data).resolve(),
            database_url=os.environ.get("MAKEGOOD_DATABASE_URL") or None,
            sync_limit=int(os.environ.get("MAKEGOOD_SYNC_LIMIT") or 50_000),
            job_lease=lease,
            limits=Limits.from_env(),
            learning_refresh=_number("MAKEGOOD_LEARNING_REFRESH", 2.0),
            seed=_seed(os.environ.get("MAKEGOOD_SEED")),
        )

    @property
    def db_url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir)

    @property
    def db_label(self) -> str:
        """Where the ledger lives, safe to print (no password)."""
        if self.database_url is None:
            return str(self.data_dir / "makegood.db")
        from sqlalchemy.engine import make_url

        return make_url(self.database_url).render_as_string(hide_password=True)


def _number(name: str, default: float) -> float:
    """A non-negative number of seconds from the environment; a bad one names the variable."""
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a number of seconds") from None
    if not value >= 0:
        raise ValueError(f"{name}: {text!r} must be 0 or more")
    return value


def _seed(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"MAKEGOOD_SEED: {text!r} is not a whole number") from None
