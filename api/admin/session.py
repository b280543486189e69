"""Browser sessions for the admin pages: the API key pasted once, then a signed cookie.

The cookie holds `key id . expiry . nonce . mac`, signed with a secret derived from the
key's stored hash (see `KeyStore.session_secret`), so every worker can check it, nothing new
is stored, and revoking the key ends its sessions on the next request. The cookie is
HttpOnly and SameSite=Strict; each form also carries a CSRF token derived from the session,
and the login form one matched against a short-lived cookie (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from typing import Any

import anyio.to_thread
import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from api.keys import LOCAL_ADMIN, ROLES, KeyInfo, KeyStore, allows, is_loopback

__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "LOGIN_COOKIE",
    "TTL_SECONDS",
    "Forbidden",
    "Session",
    "SignInNeeded",
    "check_csrf",
    "check_login_csrf",
    "cookie_value",
    "require_session",
]

COOKIE = "mg_admin"
LOGIN_COOKIE = "mg_login"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"
TTL_SECONDS = 8 * 3600
"""A working day; signing in again costs one paste."""


class SignInNeeded(NotAuthorizedException):
    """No valid session: pages answer with a redirect to the login form."""


class Forbidden(PermissionDeniedException):
    """A valid session whose role may not see this page."""


class Session(msgspec.Struct, frozen=True, kw_only=True):
    key: KeyInfo
    csrf: str
    nonce: str
    expires: int

    def may(self, role: str) -> bool:
        return allows(self.key.role, role)  # type: ignore[arg-type]


_COOKIE_VALUE = re.compile(r"([\w-]{1,64})\.([0-9]{1,12})\.([\w-]{1,64})\.([0-9a-f]{64})", re.ASCII)
"""What `cookie_value` writes; anything else (a 5,000-digit expiry, "²", a NUL) is no session."""


def _mac(secret: bytes, *parts: str) -> str:
    return hmac.new(secret, ".".join(parts).encode(), hashlib.sha256).hexdigest()


def cookie_value(key_id: str, secret: bytes, now: float | None = None) -> str:
    """A fresh signed session for one key."""
    expires = str(int((time.time() if now is None else now) + TTL_SECONDS))
    nonce = secrets.token_urlsafe(12)
    return ".".join((key_id, expires, nonce, _mac(secret, "session", key_id, expires, nonce)))


def _open(store: KeyStore, value: str) -> Session | None:
    shaped = _COOKIE_VALUE.fullmatch(value)
    if shaped is None or int(shaped[2]) < time.time():
        return None
    key_id, expires, nonce, mac = shaped.groups()
    found = store.session_secret(key_id)
    if found is None:
        return None
    info, secret = found
    if not hmac.compare_digest(mac, _mac(secret, "session", key_id, expires, nonce)):
        return None
    if store.session_ended(nonce):  # signed out: a copy of the cookie is no good either
        return None
    return Session(key=info, csrf=_mac(secret, "csrf", nonce), nonce=nonce, expires=int(expires))


async def require_session(connection: ASGIConnection[Any, Any, Any, Any], handler: Any) -> None:
    """Guard of every admin route: `opt["page"]` names the role it needs, "any" (signed in
    with any role) or "open".

    A route that declares nothing is refused, so a forgotten declaration fails closed.
    """
    needed = handler.opt.get("page")
    if needed == "open":
        return
    if needed not in (*ROLES, "any"):
        raise PermissionDeniedException(f"admin route {connection.scope['path']} declares no role")
    value = connection.cookies.get(COOKIE)
    store: KeyStore = connection.app.state.key_store
    session = await anyio.to_thread.run_sync(_open, store, value) if value else None
    if session is None:
        raise SignInNeeded("sign in with an API key")
    client = connection.client.host if connection.client else None
    if session.key.name == LOCAL_ADMIN and not is_loopback(client):
        raise SignInNeeded("the local admin key works from this machine only")
    connection.state["api_key"] = session.key  # the audit log names who changed what
    connection.state["admin_session"] = session
    if needed != "any" and not session.may(needed):
        raise Forbidden(f"your key has role {session.key.role}; this page needs role {needed}")


def check_csrf(session: Session, form: dict[str, Any], headers: Any) -> None:
    """403 unless the form (or an htmx header) carries this session's token."""
    token = str(form.get(CSRF_FIELD) or headers.get(CSRF_HEADER) or "")
    if not hmac.compare_digest(token.encode(), session.csrf.encode()):
        raise PermissionDeniedException("CSRF token missing or wrong: reload the page")


def check_login_csrf(form: dict[str, Any], cookies: dict[str, str]) -> None:
    """The login form's token must match the cookie set when the form was shown."""
    token = str(form.get(CSRF_FIELD) or "")
    expected = cookies.get(LOGIN_COOKIE) or ""
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise PermissionDeniedException("CSRF token missing or wrong: reload the login page")
