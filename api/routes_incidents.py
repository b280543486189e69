"""Incident endpoints for the service desk: thin handlers over `offers.flow`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from litestar import Response, get, patch, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from api.runtime import Runtime
from api.wire import (
    DecisionPage,
    IncidentCreate,
    IncidentPatch,
    IncidentResult,
    decisions_out,
)
from offers.flow import Outcome, apply_update
from offers.incidents import Incident

log = logging.getLogger("makegood")


def _result(outcome: Outcome) -> IncidentResult:
    return IncidentResult(
        incident_id=outcome.incident_id,
        step=outcome.step,
        delay_minutes=outcome.delay_minutes,
        issued=outcome.issued,
        cost=round(outcome.cost, 2),
        budget=outcome.budget,
        spent=round(outcome.spent, 2),
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
        runtime.parts(),
        data.incident(),
        data.customers,
        datetime.now(UTC),
        dry_run=data.dry_run,
        budget=data.budget,
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
        budget=data.budget,
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


handlers = [create_incident, update_incident, list_decisions]
