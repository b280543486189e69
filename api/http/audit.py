"""The audit log: every change made through the API by marketing, analysts and admins.

An ASGI middleware notes who (the key's name and role), what (method and path), when, the
status, and the live offer table and segmentation before and after: the state a change to
the offers or segments moves. Service-desk calls are recorded in the ledger itself; a POST
that changes nothing (a preview, a validation, a simulation) declares `opt["changes"] =
False` and is not recorded. A route that erases a customer declares the path parameter
holding the id (`opt["audit_pseudonym"] = "customer_id"`): its own row names the customer's
pseudonym, like the rows the erasure rewrote before it (offers.ledger.erasure).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import msgspec
import sqlalchemy as sa
from litestar.types import ASGIApp, Message, Receive, Send

from api.keys import KeyInfo
from offers.ledger import pseudonymous_path
from offers.ledger.schema import audit_log

__all__ = ["AUDITED_ROLES", "AuditEntry", "audit_middleware", "recent"]

log = logging.getLogger("makegood")

AUDITED_ROLES = frozenset({"marketing", "analyst", "admin"})
_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    at: datetime
    key_id: str
    key_name: str
    role: str
    method: str
    path: str
    status_code: int
    before: str | None
    after: str | None


def _state(scope: Any) -> str | None:
    runtime = scope["app"].state.get("runtime")
    if runtime is None:
        return None
    name, version = runtime.table_version
    card = runtime.model.card
    return f"offer table {name} v{version}; segmentation {card.version}"


def _write(engine: sa.Engine, row: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(audit_log.insert().values(**row))


def _path(scope: Any) -> str:
    """The request's path as the audit log keeps it: an erased customer by pseudonym."""
    path: str = scope["path"]
    handler = scope.get("route_handler")
    param = handler.opt.get("audit_pseudonym") if handler is not None else None
    customer = scope.get("path_params", {}).get(param) if param else None
    return pseudonymous_path(path, str(customer)) if customer else path[:512]


def audit_middleware(app: ASGIApp) -> ASGIApp:
    """Wrap `app` so that audited changes are written once the response has started."""

    async def middleware(scope: Any, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        reads_only = handler is not None and handler.opt.get("changes") is False
        if scope["type"] != "http" or scope["method"] not in _CHANGES or reads_only:
            await app(scope, receive, send)
            return
        before = _state(scope)
        status: list[int] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await app(scope, receive, capture)
        finally:
            key: KeyInfo | None = scope.get("state", {}).get("api_key")
            if key is not None and key.role in AUDITED_ROLES:
                row = {
                    "at": datetime.now(UTC),
                    "key_id": key.id,
                    "key_name": key.name,
                    "role": key.role,
                    "method": scope["method"],
                    "path": _path(scope),
                    "status_code": status[0] if status else 500,
                    "before": before,
                    "after": _state(scope),
                }
                try:
                    engine = scope["app"].state.runtime.engine
                    await anyio.to_thread.run_sync(_write, engine, row)
                except Exception as exc:  # the change happened; a lost audit row is logged
                    log.error("audit log write failed: %s", type(exc).__name__)

    return middleware


def recent(engine: sa.Engine, limit: int) -> list[AuditEntry]:
    """The newest audit entries first."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        rows = [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(query)]
    for row in rows:
        if row["at"].tzinfo is None:
            row["at"] = row["at"].replace(tzinfo=UTC)
    return msgspec.convert(rows, list[AuditEntry])
