"""The HTTP application: one factory, thin handlers, errors that name the field."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Litestar, Request, Response, get, patch, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.runtime import Runtime, open_runtime
from api.settings import Settings
from api.wire import (
    DecisionPage,
    IncidentCreate,
    IncidentPatch,
    IncidentResult,
    decisions_out,
)
from offers.flow import Outcome, UnknownCustomers, UnknownIncident, apply_update
from offers.incidents import Incident

log = logging.getLogger("makegood")


def _result(outcome: Outcome) -> IncidentResult:
    return IncidentResult(
        incident_id=outcome.incident_id,
        step=outcome.step,
        delay_minutes=outcome.delay_minutes,
        issued=outcome.issued,
        cost=round(outcome.cost, 2),
        dry_run=outcome.dry_run,
        decisions=decisions_out(outcome.decisions),
    )


def _log_outcome(action: str, outcome: Outcome) -> None:
    log.info(
        "%s incident=%s step=%d issued=%d dry_run=%s",
        action,
        outcome.incident_id,
        outcome.step,
        outcome.issued,
        outcome.dry_run,
    )


@get("/healthz", sync_to_thread=False, tags=["operations"])
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@get("/readyz", sync_to_thread=True, tags=["operations"])
def readyz(state: State) -> Response[dict[str, Any]]:
    """The ledger answers and a model and offer table are loaded."""
    runtime: Runtime = state.runtime
    try:
        runtime.ready()
    except Exception as exc:  # any database failure means "not ready", never a crash
        log.warning("not ready: %s", type(exc).__name__)
        return Response(
            {"status": "unavailable", "reason": "database"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    name, version = runtime.table_version
    return Response(
        {
            "status": "ready",
            "segmentation": runtime.model.card.version,
            "offer_table": f"{name} v{version}",
            "profiles": len(runtime.book),
        }
    )


@post(
    "/v1/incidents",
    sync_to_thread=True,
    tags=["incidents"],
    status_code=HTTP_201_CREATED,
    operation_id="createIncident",
)
def create_incident(state: State, data: JSONBody[IncidentCreate]) -> Response[IncidentResult]:
    """Open an incident and decide its current step for every affected customer.

    Repeating the same call is safe: decisions already in the ledger are returned, not
    issued again (`issued` counts only what this call recorded).
    """
    runtime: Runtime = state.runtime
    existed = runtime.ledger.incident(data.incident_id) is not None
    outcome = apply_update(
        runtime.parts(), data.incident(), data.customers, datetime.now(UTC), dry_run=data.dry_run
    )
    _log_outcome("create", outcome)
    return Response(_result(outcome), status_code=HTTP_200_OK if existed else HTTP_201_CREATED)


@patch(
    "/v1/incidents/{incident_id:str}",
    sync_to_thread=True,
    tags=["incidents"],
    operation_id="updateIncident",
)
def update_incident(
    state: State, incident_id: FromPath[str], data: JSONBody[IncidentPatch]
) -> IncidentResult:
    """New facts for an incident: decisions for a newly crossed step, nothing twice."""
    runtime: Runtime = state.runtime
    stored = runtime.ledger.incident(incident_id)
    if stored is None:
        raise NotFoundException(f"incident {incident_id!r} not found")
    incident = Incident(
        incident_id=incident_id,
        kind=stored["kind"],
        occurred_at=stored["occurred_at"],
        facts=data.facts,
    )
    outcome = apply_update(
        runtime.parts(),
        incident,
        data.customers,
        datetime.now(UTC),
        dry_run=data.dry_run,
        must_exist=True,
    )
    _log_outcome("update", outcome)
    return _result(outcome)


@get(
    "/v1/incidents/{incident_id:str}/decisions",
    sync_to_thread=True,
    tags=["incidents"],
    operation_id="listDecisions",
)
def list_decisions(
    state: State,
    incident_id: FromPath[str],
    step: Annotated[int | None, QueryParameter(ge=1, description="only this step")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, QueryParameter(ge=0)] = 0,
) -> DecisionPage:
    """Decisions recorded for an incident, by step then customer id, a page at a time."""
    runtime: Runtime = state.runtime
    if runtime.ledger.incident(incident_id) is None:
        raise NotFoundException(f"incident {incident_id!r} not found")
    total = runtime.ledger.count(incident_id, step)
    frame = runtime.ledger.decisions(incident_id, step=step, limit=limit, offset=offset)
    return DecisionPage(
        incident_id=incident_id,
        total=total,
        offset=offset,
        limit=limit,
        next_offset=offset + limit if offset + limit < total else None,
        decisions=decisions_out(frame),
    )


def _unknown_customers(_: Request[Any, Any, Any], exc: UnknownCustomers) -> Response[Any]:
    return Response(
        {
            "status_code": 422,
            "detail": f"customers: {exc}",
            "extra": [{"key": "customers", "message": str(exc), "unknown": exc.ids[:100]}],
        },
        status_code=422,
    )


def _unknown_incident(_: Request[Any, Any, Any], exc: UnknownIncident) -> Response[Any]:
    return Response({"status_code": 404, "detail": f"incident {exc} not found"}, status_code=404)


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """Schema violations are 422 and name the field; unparseable bodies stay 400."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    fields = [e for e in extra if isinstance(e, dict) and e.get("key")]
    malformed = any(
        "malformed" in str(e.get("message", "")).lower() for e in extra if isinstance(e, dict)
    )
    status = 400 if malformed or not fields else 422
    detail = "; ".join(f"{e['key']}: {e['message']}" for e in fields) or exc.detail
    return Response({"status_code": status, "detail": detail, "extra": extra}, status_code=status)


def create_app(runtime: Runtime) -> Litestar:
    """The app over ready parts; tests hand it a runtime on a temporary data folder."""
    return Litestar(
        route_handlers=[healthz, readyz, create_incident, update_incident, list_decisions],
        state=State({"runtime": runtime}),
        exception_handlers={
            UnknownCustomers: _unknown_customers,
            UnknownIncident: _unknown_incident,
            ValidationException: _validation,
        },
        openapi_config=OpenAPIConfig(
            title="makegood",
            version="0.1.0",
            description="Apology, perk and entitlements for every customer a failure touches.",
            path="/schema",
        ),
        on_shutdown=[runtime.close],
    )


def app_from_env() -> Litestar:
    """Factory for `makegood serve` workers: settings from the environment."""
    return create_app(open_runtime(Settings.from_env()))


__all__ = ["app_from_env", "create_app"]
