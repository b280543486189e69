"""Incident pages for the service desk: recent incidents, their steps and cost, one decision.

Reads only, through the ledger calls the JSON routes use (`api.http.incidents`), so a
decision looks here exactly as it did in the API answer, reasons and entitlements included.
The list filters by kind, date and status and exports what it shows as CSV or Parquet; an
incident's decisions export the same way.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

import polars as pl
from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from api.admin.render import page, see_other
from api.http.wire import decisions_out
from api.numbers import whole_number
from api.runtime import Runtime
from offers.incidents import FLIGHT_KINDS, SERVICE_KINDS
from offers.ledger import (
    STATUSES,
    IncidentFilter,
    incident_lines_frame,
    recent_incidents,
    wording_books,
)
from segmentation.cells import guard_frame

__all__ = ["handlers"]

DESK = {"page": "desk"}
PAGE_SIZE = 50
LIST_SIZE = 200
EXPORT_SIZE = 100_000
KINDS = FLIGHT_KINDS + SERVICE_KINDS
PARQUET = "application/vnd.apache.parquet"


def _incident(runtime: Runtime, incident_id: str) -> dict[str, Any]:
    stored = runtime.ledger.incident(incident_id)
    if stored is None:
        raise NotFoundException(f"incident {incident_id!r} not found")
    return stored


def _filters(query: Any) -> tuple[IncidentFilter, dict[str, str], dict[str, str]]:
    """The list's filters from the query string: (filter, the values typed, errors by field)."""
    typed = {k: str(query.get(k, "")).strip()[:40] for k in ("kind", "from", "to", "status")}
    errors: dict[str, str] = {}
    kind = typed["kind"] or None
    if kind is not None and kind not in KINDS:
        errors["kind"] = f"kind {kind!r}: one of {', '.join(KINDS)}"
    status = typed["status"] or None
    if status is not None and status not in STATUSES:
        errors["status"] = f"status {status!r}: one of {', '.join(STATUSES)}"
    days: dict[str, datetime | None] = {}
    for field in ("from", "to"):
        try:
            day = date.fromisoformat(typed[field]) if typed[field] else None
        except ValueError:
            errors[field] = f"{field} {typed[field]!r}: a date such as 2026-11-25"
            day = None
        days[field] = None if day is None else datetime.combine(day, time(), UTC)
    until = days["to"] + timedelta(days=1) if days["to"] is not None else None  # inclusive
    if errors:
        return IncidentFilter(), typed, errors
    return (
        IncidentFilter(kind=kind, since=days["from"], until=until, status=cast(Any, status)),
        typed,
        errors,
    )


def _export(frame: pl.DataFrame, name: str, wanted: str) -> Response[bytes]:
    """`frame` as a CSV (formula-like cells quoted) or Parquet download."""
    buffer = io.BytesIO()
    if wanted == "parquet":
        frame.write_parquet(buffer)
        media = PARQUET
    else:
        guard_frame(frame).write_csv(buffer)
        media = "text/csv; charset=utf-8"
    disposition = f'attachment; filename="{name}.{wanted}"'
    return Response(
        buffer.getvalue(), media_type=media, headers={"Content-Disposition": disposition}
    )


@get("/incidents", opt=DESK, include_in_schema=False, sync_to_thread=True)
def incidents(request: Request[Any, Any, Any]) -> Response[Any]:
    """Incidents newest first, filtered by kind, date and status; `format=csv|parquet`
    downloads the filtered list."""
    runtime: Runtime = request.app.state.runtime
    where, typed, errors = _filters(request.query_params)
    wanted = request.query_params.get("format", "")
    if wanted in ("csv", "parquet") and not errors:
        lines = recent_incidents(runtime.ledger, EXPORT_SIZE, where)
        return _export(incident_lines_frame(lines), "incidents", wanted)
    lines = [] if errors else recent_incidents(runtime.ledger, LIST_SIZE, where)
    query = "&".join(f"{k}={v}" for k, v in typed.items() if v)
    return page(
        request,
        "incidents.html.j2",
        400 if errors else 200,
        incidents=lines,
        typed=typed,
        errors={k: [errors[k]] if k in errors else [] for k in typed},
        kinds=KINDS,
        statuses=STATUSES,
        query=query,
        limit=LIST_SIZE,
    )


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
    (line,) = recent_incidents(runtime.ledger, 1, IncidentFilter(incident_id=incident_id))
    return page(
        request,
        "incident.html.j2",
        incident=stored,
        incident_id=incident_id,
        steps=steps,
        spent=spent,
        currency=line.currency,
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


@get(
    "/incidents/{incident_id:str}/decisions",
    opt=DESK,
    include_in_schema=False,
    sync_to_thread=True,
)
def decisions_export(request: Request[Any, Any, Any], incident_id: FromPath[str]) -> Response[Any]:
    """Every decision of an incident as a file: `format=csv` (default) or `parquet`."""
    runtime: Runtime = request.app.state.runtime
    _incident(runtime, incident_id)
    wanted = "parquet" if request.query_params.get("format") == "parquet" else "csv"
    frame = runtime.ledger.decisions(incident_id)
    nested = [c for c, t in frame.schema.items() if t.is_nested()]
    if wanted == "csv":  # a CSV cell holds text: lists of records as JSON
        frame = frame.with_columns(
            pl.format(
                "[{}]", pl.col(c).list.eval(pl.element().struct.json_encode()).list.join(",")
            ).alias(c)
            for c in nested
        )
    return _export(frame, f"{incident_id}-decisions", wanted)


handlers: list[HTTPRouteHandler] = [incidents, incident, decision, decisions_export]
