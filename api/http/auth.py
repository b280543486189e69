"""Who may call what: an app-wide guard checking the API key against the route's role.

Each handler declares the role it needs (`opt={"role": "desk"}`); admin may call anything.
Probes, metrics and the OpenAPI document stay open. A route that declares nothing and is
not known here needs admin: a forgotten declaration fails closed, never open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    TooManyRequestsException,
)
from litestar.handlers import BaseRouteHandler

from api.http.ratelimit import RateLimiter
from api.keys import (
    LOCAL_ADMIN,
    ROLES,
    KeyInfo,
    KeyStore,
    Role,
    allows,
    is_loopback,
    key_id_of,
)

__all__ = [
    "OPEN_PREFIXES",
    "WrongSecrets",
    "caller",
    "checked_key",
    "presented_key",
    "require_key",
    "required_role",
]

OPEN_PREFIXES: tuple[str, ...] = ("/healthz", "/readyz", "/metrics", "/schema")
"""Paths anyone may read: liveness, readiness, Prometheus and the API description."""

#: Roles for routes declared in modules that do not (yet) say so themselves.
_BY_PREFIX: tuple[tuple[str, Role], ...] = (
    ("/v1/feedback", "desk"),
    ("/v1/followups", "desk"),
    ("/v1/incidents", "desk"),
    ("/v1/decisions", "desk"),
    ("/v1/jobs", "desk"),
    ("/v1/simulat", "marketing"),
    ("/v1/perks", "marketing"),
    ("/v1/offer-tables", "marketing"),
    ("/v1/messages", "marketing"),
    ("/v1/profiles", "analyst"),
    ("/v1/segmentations", "analyst"),
    ("/v1/reports", "analyst"),
)


def required_role(handler: BaseRouteHandler, path: str) -> Role | None:
    """The role a route needs, or None when it is open to anyone."""
    declared = handler.opt.get("role")
    if declared is not None:
        if declared not in ROLES:
            raise ValueError(f"route {path}: unknown role {declared!r}")
        return declared  # type: ignore[no-any-return]
    if path.startswith(OPEN_PREFIXES):
        return None
    return next((role for prefix, role in _BY_PREFIX if path.startswith(prefix)), "admin")


def presented_key(headers: Any) -> str | None:
    """The key from `Authorization: Bearer …` or `X-API-Key`, if any."""
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return str(token.strip())
    key = headers.get("x-api-key")
    return str(key).strip() or None if key else None


class WrongSecrets:
    """Wrong secrets of real keys, limited per key id and per client address apart.

    Each costs a slow hash. Per key id (from any address): a key id under attack gets 429
    for secrets not yet verified, and nothing else does. Per address (over all key ids),
    `ADDRESS_SHARE` times as many: one address cannot spread the slow hashes over many key
    ids, yet hammering one key id leaves room for that address's valid keys.
    """

    ADDRESS_SHARE = 4

    def __init__(self, per_minute: float, shared: Path | None, database: sa.Engine) -> None:
        self.by_key = RateLimiter(
            per_minute / 60, per_minute, shared, database=database, scope="wrong-secret-key"
        )
        many = per_minute * self.ADDRESS_SHARE
        self.by_address = RateLimiter(
            many / 60, many, shared, database=database, scope="wrong-secret-address"
        )

    def check(self, key_id: str, address: str) -> None:
        """429 before a slow hash when this key id or this address has failed too often."""
        for limiter, subject, who in (
            (self.by_key, key_id, f"for key {key_id}"),
            (self.by_address, address, "from this address"),
        ):
            if limiter.exhausted(subject):
                raise TooManyRequestsException(
                    f"too many wrong secrets {who}; retry shortly",
                    headers={"Retry-After": str(limiter.retry_after())},
                )

    def failed(self, key_id: str, address: str) -> None:
        """One token from each bucket per slow hash spent in vain."""
        self.by_key.allow(key_id)
        self.by_address.allow(address)


async def checked_key(connection: ASGIConnection[Any, Any, Any, Any], key: str) -> KeyInfo | None:
    """`key`'s record when valid, else None. A key verified before, an unknown or a revoked
    one costs no slow hash and no limit; a secret to check with one is refused with 429
    first when its key id or the client's address has sent too many wrong ones."""
    store: KeyStore = connection.app.state.key_store
    found = store.remembered(key)  # most requests: one indexed read, on the event loop
    if found is not None:
        return found[0]
    key_id = key_id_of(key)
    if key_id is None:  # `remembered` answers for these; never hash one
        return None
    address = connection.client.host if connection.client else "unknown"
    wrong: WrongSecrets = connection.app.state.failed_keys
    wrong.check(key_id, address)
    info, hashed = await anyio.to_thread.run_sync(store.check, key)
    if hashed:
        wrong.failed(key_id, address)
    return info


async def require_key(connection: ASGIConnection[Any, Any, Any, Any], handler: Any) -> None:
    """401 without a valid key, 403 when its role may not call this route."""
    if "page" in handler.opt:  # admin pages: their session guard decides (api/admin)
        return
    needed = required_role(handler, connection.scope["path"])
    if needed is None:
        return
    key = presented_key(connection.headers)
    challenge = {"WWW-Authenticate": 'Bearer realm="makegood"'}
    if key is None:
        raise NotAuthorizedException(
            "API key required: send 'Authorization: Bearer <key>' or 'X-API-Key'",
            headers=challenge,
        )
    info = await checked_key(connection, key)
    if info is None:
        raise NotAuthorizedException("API key unknown or revoked", headers=challenge)
    client = connection.client.host if connection.client else None
    if info.name == LOCAL_ADMIN and not is_loopback(client):
        raise NotAuthorizedException("the local admin key works from this machine only")
    if not allows(info.role, needed):
        raise PermissionDeniedException(
            f"key {info.name!r} has role {info.role}; this route needs role {needed}"
        )
    limiter: RateLimiter = connection.app.state.rate_limiter
    if not limiter.allow(info.id):
        raise TooManyRequestsException(
            f"rate limit: {limiter.per_second:g} requests per second per key "
            f"(bursts of {limiter.burst:g}); retry shortly",
            headers={"Retry-After": str(limiter.retry_after())},
        )
    connection.state["api_key"] = info


def caller(connection: ASGIConnection[Any, Any, Any, Any], said: str | None = None) -> str:
    """Who made a change, for its history: the API key's (or admin session's) name, and the
    person a shared key speaks for when the client says so (`said`)."""
    info: KeyInfo | None = connection.state.get("api_key")
    name = info.name if info is not None else "unknown"
    return name if said in (None, "", name) else f"{said} (key {name})"
