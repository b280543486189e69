"""Incident pages for the service desk: recent incidents, their steps and cost, one decision.

Reads only, through the ledger calls the JSON routes use (`api.http.incidents`), so a
decision looks here exactly as it did in the API answer, reasons and entitlements included.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from api.admin.render import page, see_other
from api.http.wire import decisions_out
from api.numbers import whole_number
from api.runtime import Runtime
from offers.ledger import recent_incidents, wording_books

__all__ = ["handlers"]

DESK = {"page": "desk"}
PAGE_SIZE = 50


def _incident(runtime: Runtime, incident_id: str) -> dict[str, Any]:
    stored = runtime.ledger.incident(incident_id)
    if stored is None:
        raise NotFoundException(f"incident {incident_id!r} not found")
    return stored


@get("/incidents", opt=DESK, include_in_schema=False, sync_to_thread=True)
def incidents(request: Request[Any, Any, Any]) -> Response[str]:
    """The most recently updated incidents: step, decisions, perks, spent against budget."""
    runtime: Runtime = request.app.state.runtime
    return page(request, "incidents.html.j2", incidents=recent_incidents(runtime.ledger))


@get("/incidents/{incident_id:str}", opt=DESK, include_in_schema=False, sync_to_thread=True)
def incident(request: Request[Any, Any, Any], incident_id: FromPath[str]) -> Response[Any]:
    """One incident: facts, what each step issued and cost, and a page of its decisions."""
    runtime: Runtime = request.app.state.runtime
    customer = request.query_params.get("customer", "").strip()
    if customer:
        return see_other(f"/admin/incidents/{incident_id}/customers/{customer}")
    stored = _incident(runtime, incident_id)
    offset_text = request.query_params.get("offset", "0")
    offset = whole_number(offset_text) or 0
    steps = runtime.ledger.summary(incident_id).to_dicts()
    total = runtime.ledger.count(incident_id)
    frame = runtime.ledger.decisions(incident_id, limit=PAGE_SIZE, offset=offset)
    spent = round(sum(s["cost"] for s in steps), 2)
    return page(
        request,
        "incident.html.j2",
        incident=stored,
        incident_id=incident_id,
        steps=steps,
        spent=spent,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        decisions=decisions_out(frame),
    )


@get(
    "/incidents/{incident_id:str}/customers/{customer_id:str}",
    opt=DESK,
    include_in_schema=False,
    sync_to_thread=True,
)
def decision(
    request: Request[Any, Any, Any], incident_id: FromPath[str], customer_id: FromPath[str]
) -> Response[str]:
    """Every step's decision for one customer, with the reasons it was made."""
    runtime: Runtime = request.app.state.runtime
    _incident(runtime, incident_id)
    frame = runtime.ledger.decisions(incident_id, customer_id=customer_id)
    if frame.is_empty():
        raise NotFoundException(f"no decision for customer {customer_id!r} in {incident_id}")
    return page(
        request,
        "decision.html.j2",
        incident_id=incident_id,
        customer_id=customer_id,
        decisions=decisions_out(frame),
        books=wording_books(runtime.ledger, incident_id, customer_id),
    )


handlers: list[HTTPRouteHandler] = [incidents, incident, decision]
