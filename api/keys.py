"""API keys: a secret shown once, only a salted scrypt hash kept; revocation is one column.

A key reads `mg_<id>_<secret>`: the id finds the row in O(1), then scrypt checks the secret.
A verified key is remembered by its whole text, so the slow hash is spent once per key and
process. Whether it was revoked since: in a served worker, its refresher reads the revoked
key ids every second (`refresh_revoked`), so a revocation by another process counts within
a second and one made through this worker at once, with no read per request; elsewhere
(no refresher) the key's row is read again on every use.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import msgspec
import sqlalchemy as sa

from offers.ledger import Read
from offers.ledger.schema import api_keys, ended_sessions

__all__ = [
    "LOCAL_ADMIN",
    "ROLES",
    "KeyInfo",
    "KeyStore",
    "Role",
    "allows",
    "is_loopback",
    "key_id_of",
    "write_local_key",
]

Role = Literal["desk", "marketing", "analyst", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
LOCAL_ADMIN = "local-admin"
"""Name of the key generated for a server that has none; it only ever serves loopback."""

_PREFIX = "mg"
# scrypt at n=2**14, r=8, p=1: about 16 MiB and tens of milliseconds per check
_N, _R, _P = 2**14, 8, 1


class KeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A key as listed: never its secret or hash."""

    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None


def allows(role: Role, needed: Role) -> bool:
    """Admin may do everything; every other role only its own area."""
    return role == "admin" or role == needed


def is_loopback(host: str | None) -> bool:
    """Whether an address (or `localhost`) never leaves this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)


def _split(key: str) -> tuple[str, str] | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != _PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def key_id_of(key: str) -> str | None:
    """The id part of a key that has the key's shape; its secret is not looked at."""
    parsed = _split(key)
    return parsed[0] if parsed is not None else None


def _utc(value: Any) -> Any:
    """SQLite hands back naive times; they were written in UTC."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _info(row: sa.Row[tuple[object, ...]]) -> KeyInfo:
    fields = ("id", "name", "role", "created_at", "revoked_at")
    return msgspec.convert({k: _utc(row._mapping[k]) for k in fields}, KeyInfo)


class KeyStore:
    """Keys in the ledger database (SQLite or PostgreSQL), shared by every worker."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        #: keys whose secret was verified, by a fast digest of the whole key (never the key
        #: itself): a right secret stays right, so only revocation (read on every use) ends
        #: an entry
        self._cache: dict[bytes, KeyInfo] = {}
        self._revoked_at = Read(
            engine, sa.select(api_keys.c.revoked_at).where(api_keys.c.id == _ID)
        )
        self._lock = threading.Lock()
        #: ids of revoked keys as a refresher last read them (api/refresher.py); None: no
        #: refresher, a remembered key's row is read on every use
        self.revoked: frozenset[str] | None = None

    def refresh_revoked(self) -> None:
        """Read which keys are revoked now (a refresher's round)."""
        query = sa.select(api_keys.c.id).where(api_keys.c.revoked_at.is_not(None))
        with self.engine.connect() as conn:
            self.revoked = frozenset(conn.execute(query).scalars())

    def create(self, name: str, role: Role, now: datetime) -> tuple[KeyInfo, str]:
        """Store a new key; the returned secret is the only copy there will ever be."""
        if role not in ROLES:
            raise ValueError(f"role: use one of {', '.join(ROLES)}")
        if not 1 <= len(name) <= 128:
            raise ValueError("name: must be 1 to 128 characters")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = os.urandom(16)
        with self.engine.begin() as conn:
            conn.execute(
                api_keys.insert().values(
                    id=key_id,
                    name=name,
                    role=role,
                    salt=salt,
                    hash=_hash(secret, salt),
                    created_at=now,
                )
            )
        info = KeyInfo(id=key_id, name=name, role=role, created_at=now)
        return info, f"{_PREFIX}_{key_id}_{secret}"

    def all(self) -> list[KeyInfo]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        with self.engine.connect() as conn:
            return [_info(row) for row in conn.execute(query)]

    def revoke(self, key_id: str, now: datetime) -> KeyInfo:
        """Revoke a key at once, for every worker; revoking twice keeps the first time."""
        with self.engine.begin() as conn:
            conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise LookupError(f"no key {key_id!r}")
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v.id != key_id}
            if self.revoked is not None:  # refused here at once, not at the next round
                self.revoked = self.revoked | {key_id}
        return _info(row)

    def active(self, *, include_local: bool = True) -> list[KeyInfo]:
        """Keys not revoked; without the generated local admin key when asked."""
        return [
            k
            for k in self.all()
            if k.revoked_at is None and (include_local or k.name != LOCAL_ADMIN)
        ]

    def end_session(self, nonce: str, key_id: str, expires_at: datetime) -> None:
        """Refuse this admin session from now on, in every worker; forget ended ones that
        have expired anyway."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(ended_sessions.delete().where(ended_sessions.c.expires_at < now))
            conn.execute(
                ended_sessions.insert().values(nonce=nonce, key_id=key_id, expires_at=expires_at)
            )

    def session_ended(self, nonce: str) -> bool:
        query = sa.select(ended_sessions.c.nonce).where(ended_sessions.c.nonce == nonce)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def session_secret(self, key_id: str) -> tuple[KeyInfo, bytes] | None:
        """A live key's record and a server-only secret to sign its browser sessions with.

        None once the key is revoked or gone, so its sessions end with it. The secret is
        derived from the stored hash, which never leaves the database.
        """
        query = sa.select(api_keys).where(api_keys.c.id == key_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None or row.revoked_at is not None:
            return None
        return _info(row), hashlib.sha256(b"makegood admin session\0" + row.hash).digest()

    def verify(self, key: str) -> KeyInfo | None:
        """The key's record when it is valid and not revoked, else None."""
        return self.check(key)[0]

    def check(self, key: str) -> tuple[KeyInfo | None, bool]:
        """`verify`, and whether a slow hash was spent on a wrong secret of a real key."""
        found = self._check(key, slow=True)
        assert found is not None
        return found

    def remembered(self, key: str) -> tuple[KeyInfo | None, bool] | None:
        """`check` where it needs no slow hash (an unknown or revoked key, or one verified
        before: only its row is read again), else None. Cheap enough for the event loop;
        the rest goes to a thread."""
        return self._check(key, slow=False)

    def _check(self, key: str, slow: bool) -> tuple[KeyInfo | None, bool] | None:
        parsed = _split(key)
        if parsed is None:
            return None, False
        key_id, secret = parsed
        seen = hashlib.sha256(key.encode()).digest()
        revoked = self.revoked
        if revoked is not None and key_id not in revoked:
            with self._lock:
                cached = self._cache.get(seen)
            if cached is not None:  # verified before, not revoked at the last round
                return cached, False
        state = self._revoked_at(id=key_id)  # no refresher: a revocation counts at once
        if not state or state[0][0] is not None:
            with self._lock:
                self._cache.pop(seen, None)
            return None, False
        with self._lock:
            cached = self._cache.get(seen)
        if cached is not None:
            return cached, False
        if not slow:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(_BY_ID, {"id": key_id}).first()
        if row is None or row.revoked_at is not None:
            return None, False
        if not hmac.compare_digest(_hash(secret, row.salt), row.hash):
            return None, True
        info = _info(row)
        with self._lock:
            if len(self._cache) > 10_000:  # many distinct keys: start over rather than grow
                self._cache.clear()
            self._cache[seen] = info
        return info, False


_ID = sa.bindparam("id", type_=api_keys.c.id.type)
_BY_ID = sa.select(api_keys).where(api_keys.c.id == _ID)


def write_local_key(path: Path, key: str) -> None:
    """Write the local admin key readable by its owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key + "\n")
    os.replace(tmp, path)
