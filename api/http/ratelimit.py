"""Token buckets: a burst allowance refilled at a steady rate, shared by workers and hosts.

On PostgreSQL every host and worker draws on one row per bucket in the ledger database,
taken from with one short statement that refills the bucket by the database's clock, so a
limit holds in total however many hosts serve it. On SQLite (one host) `makegood serve`
gives every worker one small memory-mapped file of buckets (in the data folder), so a key
gets its rate in total however many workers serve it, and the check costs a file lock,
never a database write. Without either (tests, one embedded app) buckets live in process
memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from offers.ledger import Read

__all__ = ["RateLimiter"]

_SLOT = struct.Struct("<Qdd")  # key hash (0: empty), tokens, last refill (CLOCK_MONOTONIC)
_HASH = struct.Struct("<Q")  # a slot's first field
SLOTS = 4096
PROBE = 32  # slots searched from a key's home before the stalest one is reused


class _MemoryBuckets:
    """Buckets of this process only."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        yield

    def get(self, key: str) -> tuple[float, float] | None:
        return self._buckets.get(key)

    def put(self, key: str, tokens: float, last: float) -> None:
        self._buckets[key] = (tokens, last)


class _SharedBuckets:
    """Buckets in a memory-mapped file that every process on this host opening it shares.

    A fixed table of slots, found by a hash of the key, read and written under `flock`.
    The file is created once and never truncated, so a process that maps it never faults.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < SLOTS * _SLOT.size:
                os.ftruncate(fd, SLOTS * _SLOT.size)
            self._map = mmap.mmap(fd, SLOTS * _SLOT.size)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._hashes: dict[str, int] = {}  # key -> its hash, so a request hashes nothing
        self._homes: dict[str, int] = {}  # key -> the slot it was last found in

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _hash(self, key: str) -> int:
        found = self._hashes.get(key)
        if found is None:
            if len(self._hashes) > SLOTS:  # many keys: start over rather than grow
                self._hashes.clear()
                self._homes.clear()
            found = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest()) or 1
            self._hashes[key] = found
        return found

    def _slot(self, key: str) -> tuple[int, bool]:
        """The slot holding `key`, else an empty one, else the least recently used nearby."""
        wanted = self._hash(key)
        last = self._homes.get(key)  # still there unless another key took the slot since
        if last is not None and _HASH.unpack_from(self._map, last * _SLOT.size)[0] == wanted:
            return last, True
        slot, found = self._probe(wanted)
        if found:
            self._homes[key] = slot
        return slot, found

    def _probe(self, wanted: int) -> tuple[int, bool]:
        home = wanted % SLOTS
        stalest, oldest = home, float("inf")
        for i in range(PROBE):
            slot = (home + i) % SLOTS
            hashed, _tokens, last = _SLOT.unpack_from(self._map, slot * _SLOT.size)
            if hashed == wanted:
                return slot, True
            if hashed == 0:
                return slot, False
            if last < oldest:
                stalest, oldest = slot, last
        return stalest, False

    def get(self, key: str) -> tuple[float, float] | None:
        slot, found = self._slot(key)
        if not found:
            return None
        _hashed, tokens, last = _SLOT.unpack_from(self._map, slot * _SLOT.size)
        return tokens, last

    def put(self, key: str, tokens: float, last: float) -> None:
        slot, found = self._slot(key)
        _SLOT.pack_into(self._map, slot * _SLOT.size, self._hash(key), tokens, last)
        if not found:
            self._homes[key] = slot


class _DatabaseBuckets:
    """Buckets in the ledger's PostgreSQL (table `rate_buckets`), shared by every host.

    A take is one INSERT … ON CONFLICT DO UPDATE … RETURNING: the row is created full less
    `n` tokens, or refilled by the seconds since its last take and `n` tokens taken when
    there are as many, all under the row's lock and by the database's clock (hosts need not
    agree on theirs). It runs through `Read`, on a connection kept in autocommit: one round
    trip.

    A busy key's tokens are leased: a take asks for `lease` of them at once (what the rate
    brings in `LEASE_SECONDS`, at most an eighth of the burst), and this process spends
    them over the next `LEASE_SECONDS`, so a desk's integration at hundreds of requests a
    second costs the database a statement per few dozen requests instead of one each, and a
    worker's event loop waits for the database that much less. The total never passes the
    limit (tokens are taken before they are spent); those a lease did not spend in time go
    back with the next take, so until then a key near its limit may be refused up to a
    lease early per process. At low rates the lease is one token: every request one take.
    """

    _NOW = "extract(epoch FROM clock_timestamp())::float8"
    _REFILL = "least(:burst, b.tokens + :back + greatest(excluded.at - b.at, 0) * :rate)"
    _TAKE = (
        "INSERT INTO rate_buckets AS b (scope, subject, tokens, at, granted)"
        f" VALUES (:scope, :subject, :burst - :n, {_NOW}, true)"
        " ON CONFLICT (scope, subject) DO UPDATE SET"
        f" tokens = CASE WHEN {_REFILL} >= :n THEN {_REFILL} - :n ELSE {_REFILL} END,"
        f" granted = {_REFILL} >= :n, at = excluded.at"
        " RETURNING granted"
    )
    _EMPTY = (
        f"SELECT least(:burst, tokens + greatest({_NOW} - at, 0) * :rate) < 1"
        " FROM rate_buckets WHERE scope = :scope AND subject = :subject"
    )
    _SWEEP = f"DELETE FROM rate_buckets WHERE scope = :scope AND at < {_NOW} - :full"
    SWEEP_EVERY = 60.0  # seconds between deletions of rows whose bucket is full again
    LEASE_SECONDS = 0.05  # a lease is what the rate brings in this long, and lasts as long

    def __init__(self, engine: sa.Engine, scope: str, per_second: float, burst: float) -> None:
        self.engine = engine
        self._params = {"scope": scope, "rate": float(per_second), "burst": float(burst)}
        self._full = burst / per_second if per_second > 0 else None  # seconds to refill
        self._take = Read(engine, sa.text(self._TAKE))
        self._empty = Read(engine, sa.text(self._EMPTY))
        self._swept = time.monotonic()
        self.lease = max(1, int(min(per_second * self.LEASE_SECONDS, burst / 8)))
        self._leased: dict[str, tuple[int, float]] = {}  # subject: (tokens left, until)
        self._lock = threading.Lock()

    def take(self, subject: str) -> bool:
        now = time.monotonic()
        with self._lock:
            left, until = self._leased.pop(subject, (0, now))
            if left > 0 and now < until:
                self._leased[subject] = (left - 1, until)
                return True
        # what the last lease did not spend goes back with this take
        granted = self.lease > 1 and self._taken(subject, self.lease, back=left)
        if granted:
            with self._lock:
                self._leased[subject] = (self.lease - 1, now + self.LEASE_SECONDS)
        else:  # no lease left in the bucket: a token, if there is one
            granted = self._taken(subject, 1, back=0 if self.lease > 1 else left)
        if self._full is not None and time.monotonic() - self._swept > self.SWEEP_EVERY:
            self._swept = time.monotonic()
            with self.engine.begin() as conn:  # a missing row is a full bucket
                conn.execute(
                    sa.text(self._SWEEP), {"scope": self._params["scope"], "full": self._full}
                )
        return granted

    def _taken(self, subject: str, n: int, back: int) -> bool:
        """Whether `n` tokens were taken (none are when fewer are left), `back` returned."""
        found = self._take(subject=subject, n=float(n), back=float(back), **self._params)
        return bool(found[0][0])

    def empty(self, subject: str) -> bool:
        found = self._empty(subject=subject, **self._params)
        return bool(found and found[0][0])


class RateLimiter:
    """Buckets of one kind (`scope`): in the database when `database` is PostgreSQL, else in
    the `shared` file, else in this process."""

    def __init__(
        self,
        per_second: float,
        burst: float,
        shared: Path | None = None,
        *,
        database: sa.Engine | None = None,
        scope: str = "request",
    ) -> None:
        self.per_second = per_second
        self.burst = max(burst, 1.0)
        self.scope = scope
        self._database = (
            _DatabaseBuckets(database, scope, per_second, self.burst)
            if database is not None and database.dialect.name == "postgresql"
            else None
        )
        self._buckets = (
            _SharedBuckets(shared)
            if shared is not None and self._database is None
            else _MemoryBuckets()
        )
        self._lock = threading.Lock()  # flock does not exclude threads of one process

    def allow(self, key: str, now: float | None = None) -> bool:
        """Take one token for `key`; False when its bucket is empty."""
        if self._database is not None:
            return self._database.take(key)
        key = f"{self.scope}\0{key}"  # limiters of several scopes may share one file
        with self._lock, self._buckets.locked():
            now = time.monotonic() if now is None else now  # read under the lock: in order
            tokens, last = self._buckets.get(key) or (self.burst, now)
            if last > now + 1.0:  # written before this host booted: start afresh
                tokens, last = self.burst, now
            tokens = min(self.burst, tokens + max(now - last, 0.0) * self.per_second)
            allowed = tokens >= 1.0
            self._buckets.put(key, tokens - 1.0 if allowed else tokens, now)
            return allowed

    def exhausted(self, key: str, now: float | None = None) -> bool:
        """Whether `key`'s bucket is empty, without taking a token."""
        if self._database is not None:
            return self._database.empty(key)
        key = f"{self.scope}\0{key}"
        with self._lock, self._buckets.locked():
            now = time.monotonic() if now is None else now
            tokens, last = self._buckets.get(key) or (self.burst, now)
            if last > now + 1.0:
                return False
            return min(self.burst, tokens + max(now - last, 0.0) * self.per_second) < 1.0

    def retry_after(self) -> int:
        """Whole seconds until one token is back."""
        return max(1, int(1 / self.per_second + 0.999)) if self.per_second > 0 else 60
