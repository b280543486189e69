"""The offers report for analysts, in the browser: the same static page the CLI writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler

from api.admin.render import HEADERS, page
from api.runtime import Runtime
from offers.learning import parse_since, render_offers_report

__all__ = ["handlers"]


@get("/report", opt={"page": "analyst"}, include_in_schema=False, sync_to_thread=True)
def offers_report(request: Request[Any, Any, Any]) -> Response[str]:
    """Acceptance with intervals, lift over holdout, complaint rates: `?since=90d`."""
    runtime: Runtime = request.app.state.runtime
    since = request.query_params.get("since", "90d")
    try:
        span = parse_since(since)
    except ValueError as exc:
        return page(request, "error.html.j2", 422, code=422, exc=HTTPException(str(exc), 422))
    html = render_offers_report(runtime.ledger, datetime.now(UTC), span, back="/admin")
    return Response(html, media_type="text/html", headers=HEADERS)


handlers: list[HTTPRouteHandler] = [offers_report]
