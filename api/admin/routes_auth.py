"""Sign in with an API key, sign out, and the start page that links what the role may see."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio.to_thread
from litestar import Request, Response, get, post
from litestar.exceptions import TooManyRequestsException
from litestar.handlers import HTTPRouteHandler

from api.admin.render import page, see_other
from api.admin.session import (
    COOKIE,
    LOGIN_COOKIE,
    TTL_SECONDS,
    check_csrf,
    check_login_csrf,
    cookie_value,
)
from api.http.auth import checked_key
from api.keys import LOCAL_ADMIN, KeyStore, is_loopback

__all__ = ["form_route", "form_work", "handlers", "posted"]

_PATH_PARAMS = re.compile(r"\{(\w+):")  # the names in "/offers/{name:str}/draft"


async def posted(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The submitted form as text fields, after checking the session's CSRF token."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    check_csrf(request.state.admin_session, form, request.headers)
    return form


async def form_work(
    request: Request[Any, Any, Any], work: Callable[..., Response[Any]], *args: str
) -> Response[Any]:
    """Check the posted form's CSRF token, then run `work(request, *args, form)` in a thread:
    every page change calls blocking store functions."""
    form = await posted(request)
    return await anyio.to_thread.run_sync(partial(work, request, *args, form))


def form_route(
    path: str, opt: dict[str, Any], work: Callable[..., Response[Any]], *fixed: str
) -> HTTPRouteHandler:
    """The POST route of a page's form: `work(request, *path values, *fixed, form)`.

    Every form post does the same (`form_work`: the CSRF check, then the change in a
    thread), so a route only says where it is and which work it calls.
    """
    names = _PATH_PARAMS.findall(path)

    async def submit(request: Request[Any, Any, Any]) -> Response[Any]:
        return await form_work(request, work, *(request.path_params[n] for n in names), *fixed)

    handler: HTTPRouteHandler = post(path, opt=opt, include_in_schema=False)(submit)
    return handler


def _safe_next(target: str) -> str:
    """Only a path inside the admin pages: never an open redirect."""
    return target if target.startswith("/admin") and "//" not in target else "/admin"


def _login_page(
    request: Request[Any, Any, Any], status: int = 200, errors: tuple[str, ...] = (), **extra: Any
) -> Response[str]:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html.j2",
        status,
        login_token=token,
        next=_safe_next(request.query_params.get("next", "/admin")),
        errors=errors,
        message=extra.get("message"),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@get("/login", opt={"page": "open"}, include_in_schema=False, sync_to_thread=False)
def login_form(request: Request[Any, Any, Any]) -> Response[str]:
    """The login form; it sets the cookie its CSRF token is checked against."""
    message = "You are signed out." if request.query_params.get("out") else None
    return _login_page(request, message=message)


@post("/login", opt={"page": "open"}, include_in_schema=False)
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    """Check the pasted key as the API would; on success, a session cookie and a redirect."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    check_login_csrf(form, request.cookies)
    key = form.get("key", "").strip()
    store: KeyStore = request.app.state.key_store
    try:
        info = await checked_key(request, key) if key else None
    except TooManyRequestsException as exc:
        response = _login_page(request, 429, (str(exc.detail),))
        response.headers.update(exc.headers or {})
        return response
    client = request.client.host if request.client else None
    if info is not None and info.name == LOCAL_ADMIN and not is_loopback(client):
        info = None
    found = await anyio.to_thread.run_sync(store.session_secret, info.id) if info else None
    if found is None:
        problem = "Paste your API key." if not key else "This key is unknown or revoked."
        return _login_page(request, 401, (problem,))
    response = see_other(_safe_next(form.get("next", "/admin")))
    response.set_cookie(
        COOKIE,
        cookie_value(found[0].id, found[1]),
        max_age=TTL_SECONDS,
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/admin")
    return response


@post("/logout", opt={"page": "any"}, include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    """End the session everywhere (a copied cookie too), and forget it in this browser."""
    await posted(request)
    session = request.state.admin_session
    store: KeyStore = request.app.state.key_store
    until = datetime.fromtimestamp(session.expires, UTC)
    await anyio.to_thread.run_sync(store.end_session, session.nonce, session.key.id, until)
    response = see_other("/admin/login?out=1")
    response.delete_cookie(COOKIE, path="/admin")
    return response


@get("", opt={"page": "any"}, include_in_schema=False, sync_to_thread=False)
def home(request: Request[Any, Any, Any]) -> Response[str]:
    """Links to what this key's role may see."""
    return page(request, "home.html.j2")


handlers: list[HTTPRouteHandler] = [login_form, login, logout, home]
