"""Idempotency keys: one caller's key answers one request body, once.

A request first claims its (scope, key) in a transaction of its own: the row goes in marked
in progress, or the row already there says who has the key. Only the claimant does the
work; it then settles the claim with its response, or releases it when it fails, so a
retry can claim again. A request with the same body waits for the response and returns
it; a request with another body is refused at once, before it writes anything. A claim
neither settled nor released (its process died) is taken over by the same body once it is
older than `STALE_AFTER`: the work is idempotent, so a takeover answers with what the
first claimant wrote, if anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from offers.ledger.db import WRITE_LOCK
from offers.ledger.schema import idempotency

__all__ = [
    "STALE_AFTER",
    "Claim",
    "KeyBusy",
    "KeyReused",
    "claim",
    "digest",
    "once",
    "release",
    "settle",
]

#: A claim older than this with no response is taken to be abandoned: longer than any
#: synchronous request runs, also one queued behind a large update of the same incident.
STALE_AFTER = timedelta(minutes=10)


class KeyReused(ValueError):
    """The key was used with a different request body; nothing was done."""


class KeyBusy(RuntimeError):
    """Another request with this key and body is still being worked on; nothing was done."""


@dataclass(frozen=True)
class Claim:
    """What claiming a key found. `token` set: the key is this request's to settle or
    release. Otherwise the key's body digest, and its response once settled."""

    token: str | None
    digest: str
    status: int | None = None
    response: bytes | None = None


def digest(body: bytes) -> str:
    """The digest kept to tell one request body from another."""
    return hashlib.sha256(body).hexdigest()


def _where(scope: str, key: str) -> sa.ColumnElement[bool]:
    return sa.and_(idempotency.c.scope == scope, idempotency.c.key == key)


def claim(engine: sa.Engine, scope: str, key: str, body_digest: str, now: datetime) -> Claim:
    """Take `key` of `scope` for a request with this body digest, or report who has it."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    token = secrets.token_hex(16)
    row = dict(scope=scope, key=key, body_digest=body_digest, claim=token, created_at=now)
    insert = dialect.insert(idempotency).on_conflict_do_nothing().returning(idempotency.c.key)
    take_over = (
        idempotency.update()
        .where(
            _where(scope, key),
            idempotency.c.response.is_(None),
            idempotency.c.body_digest == body_digest,
            idempotency.c.created_at < now - STALE_AFTER,
        )
        .values(claim=token, created_at=now)
    )
    look = sa.select(
        idempotency.c.body_digest, idempotency.c.status_code, idempotency.c.response
    ).where(_where(scope, key))
    while True:
        with engine.connect() as conn:
            with conn.execution_options(**{WRITE_LOCK: True}).begin():
                if conn.execute(insert, row).first() is not None:
                    return Claim(token, body_digest)
                if conn.execute(take_over).rowcount == 1:
                    return Claim(token, body_digest)
                found = conn.execute(look).first()
            if found is not None:  # else released since the insert met it: claim again
                response = None if found[2] is None else bytes(found[2])
                return Claim(None, found[0], found[1], response)


def settle(
    engine: sa.Engine, scope: str, key: str, token: str, status: int, response: bytes
) -> bool:
    """Store the claimant's response under the key; False if its claim was taken over."""
    with engine.begin() as conn:
        done = conn.execute(
            idempotency.update()
            .where(_where(scope, key), idempotency.c.claim == token)
            .values(status_code=status, response=response, claim=None)
        )
    return done.rowcount == 1


def release(engine: sa.Engine, scope: str, key: str, token: str) -> None:
    """Give the key up after a failure, so the request can be tried again."""
    with engine.begin() as conn:
        conn.execute(idempotency.delete().where(_where(scope, key), idempotency.c.claim == token))


def once(
    engine: sa.Engine,
    scope: str,
    key: str,
    body_digest: str,
    work: Callable[[], tuple[int, bytes]],
    wait: timedelta,
) -> tuple[int, bytes]:
    """(status, response) for a request under an idempotency key: `work`'s if this request
    claims the key, else the stored one, waiting up to `wait` for it.

    Raises `KeyReused` for another body and `KeyBusy` when the wait runs out; either way
    `work` was not called. If `work` raises, the key is released and the error goes on.
    """
    deadline = time.monotonic() + wait.total_seconds()
    pause = 0.02
    while True:
        found = claim(engine, scope, key, body_digest, datetime.now(UTC))
        if found.digest != body_digest:
            raise KeyReused("already used with a different request body")
        if found.token is not None:
            try:
                status, response = work()
            except BaseException:
                with contextlib.suppress(sa.exc.SQLAlchemyError):  # else it goes stale
                    release(engine, scope, key, found.token)
                raise
            settle(engine, scope, key, found.token, status, response)
            return status, response
        if found.response is not None:
            assert found.status is not None
            return found.status, found.response
        left = deadline - time.monotonic()
        if left <= 0:
            raise KeyBusy("a request with this key and body is still in progress")
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.5)
