"""For admins: keys (create with the secret shown once, list, revoke) and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import delete, get, post
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.http.audit import AuditEntry, recent
from api.http.errors import domain_errors
from api.keys import KeyInfo, KeyStore, Role

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[\w.@-]+(?!\n)$")]


class KeyCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    role: Role


class KeyCreated(msgspec.Struct, frozen=True, kw_only=True):
    """The new key; `key` is the secret, shown this once and never stored."""

    info: KeyInfo
    key: str


def _store(state: State) -> KeyStore:
    store: KeyStore = state.key_store
    return store


@get("/v1/keys", opt={"role": "admin"}, sync_to_thread=True, tags=["keys"], operation_id="listKeys")
def list_keys(state: State) -> list[KeyInfo]:
    """Every key, revoked ones included; never a secret or hash."""
    return _store(state).all()


@post(
    "/v1/keys",
    opt={"role": "admin"},
    sync_to_thread=True,
    tags=["keys"],
    status_code=HTTP_201_CREATED,
    operation_id="createKey",
)
def create_key(state: State, data: JSONBody[KeyCreate]) -> KeyCreated:
    """A new key for a role; keep the secret now, it cannot be shown again."""
    info, secret = _store(state).create(data.name, data.role, datetime.now(UTC))
    return KeyCreated(info=info, key=secret)


@delete(
    "/v1/keys/{key_id:str}",
    opt={"role": "admin"},
    sync_to_thread=True,
    tags=["keys"],
    status_code=HTTP_200_OK,
    operation_id="revokeKey",
)
def revoke_key(state: State, key_id: FromPath[str]) -> KeyInfo:
    """Revoke a key; every worker refuses it from the next request on."""
    with domain_errors():
        return _store(state).revoke(key_id, datetime.now(UTC))


@get(
    "/v1/audit",
    opt={"role": "admin"},
    sync_to_thread=True,
    tags=["keys"],
    operation_id="listAudit",
)
def list_audit(
    state: State, limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 100
) -> list[AuditEntry]:
    """Changes made by marketing, analysts and admins, newest first: who, what, when."""
    return recent(state.runtime.engine, limit)


handlers: list[HTTPRouteHandler] = [list_keys, create_key, revoke_key, list_audit]
