"""Admin pages under `/admin`: server-rendered HTML for marketing, analysts and the desk.

Signed in with the same API keys and roles as the JSON API (see `session`); every page reads
without JavaScript, and the vendored htmx only spares some reloads. Pages call the same
domain functions as the JSON routes; nothing here decides anything the API could not.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.exceptions import HTTPException
from litestar.static_files import create_static_files_router

from api.admin import (
    routes_auth,
    routes_books,
    routes_incidents,
    routes_messages,
    routes_offers,
    routes_reports,
    routes_segments,
)
from api.admin.render import error_page, sign_in_redirect
from api.admin.session import SignInNeeded, require_session

__all__ = ["STATIC", "admin_router"]

STATIC = Path(__file__).parent / "static"


def admin_router() -> Router:
    """Every admin page, its static files, and error pages instead of JSON errors."""
    static = create_static_files_router(
        path="/static", directories=[STATIC], opt={"page": "open"}, include_in_schema=False
    )
    return Router(
        path="/admin",
        route_handlers=[
            *routes_auth.handlers,
            *routes_offers.handlers,
            *routes_messages.handlers,
            *routes_books.handlers,
            *routes_segments.handlers,
            *routes_reports.handlers,
            *routes_incidents.handlers,
            static,
        ],
        guards=[require_session],
        exception_handlers={SignInNeeded: sign_in_redirect, HTTPException: error_page},
        include_in_schema=False,
    )
