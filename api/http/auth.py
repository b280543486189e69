"""Who may call what: an app-wide guard checking the API key against the route's role.

Each handler declares the role it needs (`opt={"role": "desk"}`); admin may call anything.
Probes, metrics and the OpenAPI document stay open. A route that declares nothing and is
not known here needs admin: a forgotten declaration fails closed, never open.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    TooManyRequestsException,
)
from litestar.handlers import BaseRouteHandler

from api.http.ratelimit import RateLimiter
from api.keys import LOCAL_ADMIN, ROLES, KeyInfo, KeyStore, Role, allows, is_loopback

__all__ = ["OPEN_PREFIXES", "presented_key", "require_key", "required_role"]

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


async def checked_key(connection: ASGIConnection[Any, Any, Any, Any], key: str) -> KeyInfo | None:
    """`key`'s record when valid, else None. Each wrong secret of a real key costs a slow
    hash: an address that keeps sending them gets 429 before any more are spent on it."""
    client = connection.client.host if connection.client else "unknown"
    failures: RateLimiter = connection.app.state.failed_keys
    if failures.exhausted(client):
        raise TooManyRequestsException(
            "too many wrong secrets from this address; retry shortly",
            headers={"Retry-After": str(failures.retry_after())},
        )
    store: KeyStore = connection.app.state.key_store
    found = store.remembered(key)  # most requests: one indexed read, on the event loop
    info, hashed = found if found is not None else await anyio.to_thread.run_sync(store.check, key)
    if hashed:
        failures.allow(client)  # one token per slow hash spent in vain
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
