"""Incident endpoints for the service desk: thin handlers over `offers.flow`."""

from __future__ import annotations

import hashlib
import io
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import polars as pl
from litestar import Request, Response, get, patch, post
from litestar.datastructures import State
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_409_CONFLICT

from api.runtime import Runtime
from api.wire import (
    DecisionOut,
    DecisionPage,
    FollowupDue,
    IncidentCreate,
    IncidentPatch,
    IncidentResult,
    IncidentStatus,
    PreviewRequest,
    StepSummary,
    decision_rows,
    decisions_out,
)
from offers.flow import Outcome, apply_update
from offers.incidents import Incident

log = logging.getLogger("makegood")

NDJSON = "application/x-ndjson"
PARQUET = "application/vnd.apache.parquet"


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


def _create(runtime: Runtime, data: IncidentCreate) -> tuple[int, IncidentResult]:
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
    return (HTTP_200_OK if existed else HTTP_201_CREATED), _result(outcome)


@post(
    "/v1/incidents",
    sync_to_thread=True,
    tags=["incidents"],
    status_code=HTTP_201_CREATED,
    operation_id="createIncident",
    responses={},
)
def create_incident(
    state: State, request: Request[Any, Any, Any], data: JSONBody[IncidentCreate]
) -> Response[IncidentResult]:
    """Open an incident and decide its current step for every affected customer.

    Repeating the same call is safe: decisions already in the ledger are returned, not
    issued again (`issued` counts only what this call recorded). With an `Idempotency-Key`
    header, the same key and body return the stored response; the same key with another
    body is a 409.
    """
    runtime: Runtime = state.runtime
    key = request.headers.get("idempotency-key")
    if key is None:
        status, result = _create(runtime, data)
        return Response(result, status_code=status)
    if not 1 <= len(key) <= 255:
        raise ClientException("Idempotency-Key: must be 1 to 255 characters")
    digest = hashlib.sha256(msgspec.json.encode(data)).hexdigest()
    stored = runtime.ledger.remembered(key)
    if stored is None:
        status, result = _create(runtime, data)
        runtime.ledger.remember(key, digest, status, msgspec.json.encode(result), datetime.now(UTC))
        stored = runtime.ledger.remembered(key)
        assert stored is not None
    if stored[0] != digest:
        raise ClientException(
            "Idempotency-Key: already used with a different request body",
            status_code=HTTP_409_CONFLICT,
        )
    return Response(msgspec.json.decode(stored[2], type=IncidentResult), status_code=stored[1])


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
    "/v1/incidents/{incident_id:str}",
    sync_to_thread=True,
    tags=["incidents"],
    operation_id="getIncident",
)
def get_incident(state: State, incident_id: FromPath[str]) -> IncidentStatus:
    """An incident's facts, current step, budget and what each step issued and cost."""
    runtime: Runtime = state.runtime
    stored = runtime.ledger.incident(incident_id)
    if stored is None:
        raise NotFoundException(f"incident {incident_id!r} not found")
    steps = runtime.ledger.summary(incident_id)
    return IncidentStatus(
        incident_id=incident_id,
        kind=stored["kind"],
        occurred_at=stored["occurred_at"],
        facts=stored["facts"],
        step=stored["step"],
        budget=stored["budget"],
        spent=round(float(steps["cost"].sum()), 2),
        decisions=int(steps["decisions"].sum()),
        steps=msgspec.convert(steps.to_dicts(), list[StepSummary]),
    )


@get(
    "/v1/incidents/{incident_id:str}/decisions",
    sync_to_thread=True,
    tags=["incidents"],
    operation_id="listDecisions",
)
def list_decisions(
    state: State,
    request: Request[Any, Any, Any],
    incident_id: FromPath[str],
    step: Annotated[int | None, QueryParameter(ge=1, description="only this step")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1000,
    offset: Annotated[int, QueryParameter(ge=0)] = 0,
) -> Response[DecisionPage]:
    """Decisions recorded for an incident, by step then customer id, a page at a time.

    JSON by default; `Accept: application/x-ndjson` gives one decision per line and
    `Accept: application/vnd.apache.parquet` a Parquet file of flat columns, both with the
    page's position in `X-Total-Count` and `X-Next-Offset` headers.
    """
    runtime: Runtime = state.runtime
    if runtime.ledger.incident(incident_id) is None:
        raise NotFoundException(f"incident {incident_id!r} not found")
    total = runtime.ledger.count(incident_id, step)
    frame = runtime.ledger.decisions(incident_id, step=step, limit=limit, offset=offset)
    next_offset = offset + limit if offset + limit < total else None
    accept = request.headers.get("accept", "")
    headers = {"X-Total-Count": str(total)}
    if next_offset is not None:
        headers["X-Next-Offset"] = str(next_offset)
    if NDJSON in accept:
        lines = b"".join(msgspec.json.encode(row) + b"\n" for row in decision_rows(frame))
        return Response(lines, media_type=NDJSON, headers=headers)  # type: ignore[arg-type]
    if PARQUET in accept or "application/x-parquet" in accept:
        buffer = io.BytesIO()
        frame.drop("followups").write_parquet(buffer)
        return Response(buffer.getvalue(), media_type=PARQUET, headers=headers)  # type: ignore[arg-type]
    page = DecisionPage(
        incident_id=incident_id,
        total=total,
        offset=offset,
        limit=limit,
        next_offset=next_offset,
        decisions=decisions_out(frame),
    )
    return Response(page, headers=headers)


@post(
    "/v1/decisions/preview",
    sync_to_thread=True,
    tags=["incidents"],
    status_code=HTTP_200_OK,
    operation_id="previewDecision",
)
def preview_decision(state: State, data: JSONBody[PreviewRequest]) -> DecisionOut:
    """What one customer would get for these facts now; nothing recorded, no cap moved."""
    runtime: Runtime = state.runtime
    outcome = apply_update(
        runtime.parts(),
        data.incident(),
        [data.customer_id],
        datetime.now(UTC),
        dry_run=True,
        budget=data.budget,
    )
    mine = outcome.decisions.filter(pl.col("customer_id") == data.customer_id)
    if mine.is_empty():
        raise ClientException(
            f"facts.delay_minutes: below the noticeability threshold "
            f"({runtime.policy.notice_minutes} min): nothing would be sent",
            status_code=422,
        )
    return decisions_out(mine.tail(1))[0]


@get("/v1/followups", sync_to_thread=True, tags=["incidents"], operation_id="listFollowups")
def list_followups(
    state: State,
    due_before: Annotated[datetime, QueryParameter(description="ISO time with timezone")],
    limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 1000,
) -> list[FollowupDue]:
    """Follow-up messages due before a time, for the messaging system to send."""
    if due_before.tzinfo is None:
        raise ClientException("due_before: needs a timezone, e.g. 2026-11-30T00:00:00Z")
    runtime: Runtime = state.runtime
    frame = runtime.ledger.followups_due(due_before, limit)
    return msgspec.convert(frame.to_dicts(), list[FollowupDue])


handlers = [
    create_incident,
    update_incident,
    get_incident,
    list_decisions,
    preview_decision,
    list_followups,
]
