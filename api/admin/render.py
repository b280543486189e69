"""HTML out: one Jinja environment, one way to answer a page, errors as pages too."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Redirect

from api.admin.grid import column_header
from api.admin.session import CSRF_FIELD, SignInNeeded
from segmentation.html import template_env

__all__ = ["HEADERS", "TEMPLATES", "error_page", "page", "see_other", "sign_in_redirect"]

TEMPLATES = Path(__file__).parent / "templates"
_ENV = template_env(TEMPLATES)  # the reports' setup, so pages escape alike
_ENV.filters["money"] = lambda x: "" if x is None else f"{x:,.2f}"
_ENV.globals["header"] = column_header
_ENV.filters["dom_id"] = lambda s: "".join(c if c.isalnum() else "_" for c in str(s))

#: Scripts only from this server; inline style attributes colour the heatmap cells.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def page(
    request: Request[Any, Any, Any], template: str, status: int = 200, **context: Any
) -> Response[str]:
    """Render `template` with the signed-in key, its CSRF token and the current path."""
    session = request.state.get("admin_session")
    html = _ENV.get_template(template).render(
        session=session,
        csrf_field=CSRF_FIELD,
        path=request.url.path,
        **context,
    )
    return Response(html, status_code=status, media_type="text/html", headers=HEADERS)


def see_other(url: str) -> Response[Any]:
    """After a successful POST: 303, so reloading the next page never posts twice."""
    return Redirect(url, status_code=303)


def sign_in_redirect(request: Request[Any, Any, Any], _exc: SignInNeeded) -> Response[Any]:
    target = "/admin/login?next=" + quote(request.url.path, safe="/")
    if request.headers.get("hx-request"):  # htmx swaps fragments: send the whole page away
        return Response("", status_code=401, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


def error_page(request: Request[Any, Any, Any], exc: HTTPException) -> Response[str]:
    """A 4xx as a page in the site's frame, saying what went wrong."""
    return page(request, "error.html.j2", exc.status_code, code=exc.status_code, exc=exc)
