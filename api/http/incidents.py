"""Incident endpoints for the service desk: thin handlers over `offers.flow`."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any, cast

import anyio.to_thread
import msgspec
import polars as pl
from litestar import Request, Response, get, patch, post
from litestar.datastructures import State
from litestar.exceptions import ClientException, NotFoundException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_201_CREATED,
    HTTP_202_ACCEPTED,
    HTTP_409_CONFLICT,
)

from api.http.background import incident_job, live_progress
from api.http.customer_selection import (
    count_customers,
    customer_ids,
    named_customers,
    upload_ids,
)
from api.http.metrics import PREVIEWED, record_outcome
from api.http.preview_json import preview_json
from api.http.preview_threads import worked_out
from api.http.wire import (
    DecisionOut,
    DecisionPage,
    IncidentCreate,
    IncidentPatch,
    IncidentResult,
    IncidentStatus,
    JobAccepted,
    JobStatus,
    PreviewRequest,
    StepSummary,
    decision_out,
    decisions_json,
    decisions_ndjson,
    patch_facts,
)
from api.keys import KeyInfo
from api.runtime import Runtime
from offers.flow import Outcome, apply_update
from offers.incidents import FLIGHT_KINDS, FactsError, Incident
from offers.ledger import idempotency, jobs
from offers.preview import Preview

log = logging.getLogger("makegood")

#: The largest step and offset the databases can compare (a 32-bit step column, 64-bit
#: offsets): anything larger is a 422 naming the parameter, not the driver's overflow.
MAX_STEP = 2**31 - 1
MAX_OFFSET = 2**63 - 1

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
        decisions=decisions_json(outcome.decisions),
    )


def _log_outcome(action: str, outcome: Outcome, kind: str) -> None:
    """Log the step and count it for /metrics (dry runs and replays count nothing)."""
    if outcome.issued and not outcome.dry_run:
        perks, cut = outcome.decisions.select(
            pl.col("perk_id").is_not_null().sum(),
            pl.col("reasons").str.contains('"budget: ').sum(),
        ).row(0)
        record_outcome(kind, outcome.issued, perks, outcome.cost, cut)
    log.info(
        "%s incident=%s step=%d issued=%d dry_run=%s",
        action,
        outcome.incident_id,
        outcome.step,
        outcome.issued,
        outcome.dry_run,
    )


#: What incident calls answer, for the OpenAPI document (api/http/contract.py).
_spec = partial(ResponseSpec, generate_examples=False)
QUEUED = _spec(JobAccepted, description="Over the sync limit: a job to poll at `Location`.")
CREATED = {
    200: _spec(IncidentResult, description="Already open (none again), or a dry run."),
    201: _spec(IncidentResult, description="This call opened the incident."),
    202: QUEUED,
}
REFUSED = "Unknown customer ids (listed in `extra`), or facts that do not fit the kind."
PREVIEW_REFUSED = "An unknown customer, facts that do not fit, or a delay below notice."
CREATE_REFUSED = {
    400: "The Idempotency-Key is not 1 to 255 characters.",
    409: "The Idempotency-Key was used with another body (nothing written), or its request "
    "is still being decided after 30 s (retry after `Retry-After`).",
    422: REFUSED,
}


#: How long a request waits for an earlier one with its Idempotency-Key and body to finish
#: before it is told to retry.
CLAIM_WAIT = timedelta(seconds=30)


def _create(runtime: Runtime, data: IncidentCreate) -> tuple[int, IncidentResult | JobAccepted]:
    """Decide the incident now (201 if this call opened it, else 200: also a dry run, which
    opens nothing), or start a job (202)."""
    named = named_customers(runtime, data.customers)
    if not data.dry_run and count_customers(runtime, named) > runtime.settings.sync_limit:
        return HTTP_202_ACCEPTED, incident_job(runtime, data.incident(), named, data.budget)
    outcome = apply_update(
        runtime.parts(),
        data.incident(),
        customer_ids(runtime, named),
        datetime.now(UTC),
        dry_run=data.dry_run,
        budget=data.budget,
    )
    _log_outcome("create", outcome, data.kind)
    opened = outcome.created and not outcome.dry_run
    return (HTTP_201_CREATED if opened else HTTP_200_OK), _result(outcome)


def _answer(status: int, body: IncidentResult | JobAccepted) -> Response[Any]:
    headers = {"Location": body.status_url} if isinstance(body, JobAccepted) else None
    return Response(body, status_code=status, headers=headers)


@post(
    "/v1/incidents",
    opt={"role": "desk", "errors": CREATE_REFUSED},
    sync_to_thread=True,
    tags=["incidents"],
    status_code=HTTP_201_CREATED,
    operation_id="createIncident",
    responses=CREATED,
)
def create_incident(
    state: State, request: Request[Any, Any, Any], data: JSONBody[IncidentCreate]
) -> Response[IncidentResult | JobAccepted]:
    """Open an incident and decide its current step for every affected customer.

    Repeating the same call is safe: decisions already in the ledger are returned, not
    issued again (`issued` counts only what this call recorded); of concurrent creates of
    one incident, one answers 201 and the others 200. Incidents with more customers than
    the sync limit answer 202 with a job to poll; their decisions land in the ledger all
    the same.

    An `Idempotency-Key` header (1 to 255 characters, your API key's own) is claimed before
    anything is decided: the same key and body return the stored response (a repeat sent
    while the first is still being decided waits for it, or after 30 s is a 409 with
    `Retry-After`); the same key with another body is a 409 and writes nothing. A request
    that fails frees its key for a retry.
    """
    runtime: Runtime = state.runtime
    key = request.headers.get("idempotency-key")
    if key is None:
        return _answer(*_create(runtime, data))
    if not 1 <= len(key) <= 255:
        raise ClientException("Idempotency-Key: must be 1 to 255 characters")
    caller: KeyInfo = request.state["api_key"]

    def work() -> tuple[int, bytes]:
        status, body = _create(runtime, data)
        return status, msgspec.json.encode(body)

    digest = idempotency.digest(msgspec.json.encode(data))
    try:
        status, stored = idempotency.once(runtime.engine, caller.id, key, digest, work, CLAIM_WAIT)
    except idempotency.KeyReused as exc:
        raise ClientException(f"Idempotency-Key: {exc}", status_code=HTTP_409_CONFLICT) from exc
    except idempotency.KeyBusy as exc:
        raise ClientException(
            f"Idempotency-Key: {exc}; retry shortly",
            status_code=HTTP_409_CONFLICT,
            headers={"Retry-After": "1"},
        ) from exc
    if status == HTTP_202_ACCEPTED:
        return _answer(status, msgspec.json.decode(stored, type=JobAccepted))
    return _answer(status, msgspec.json.decode(stored, type=IncidentResult))


@patch(
    "/v1/incidents/{incident_id:str}",
    opt={"role": "desk", "errors": {422: REFUSED}},
    tags=["incidents"],
    operation_id="updateIncident",
    responses={200: _spec(IncidentResult, description="New decisions, none twice."), 202: QUEUED},
)
async def update_incident(
    state: State, incident_id: FromPath[str], data: JSONBody[IncidentPatch]
) -> Response[IncidentResult | JobAccepted]:
    """New facts for an incident: decisions for a newly crossed step, nothing twice.

    Patches touching more customers than the sync limit answer 202 with a job to poll.
    """
    # async with an explicit thread: litestar registers handlers of a shared path twice,
    # which double-wraps a `sync_to_thread` handler that returns a Response
    return await anyio.to_thread.run_sync(_update, state.runtime, incident_id, data)


def _update(runtime: Runtime, incident_id: str, data: IncidentPatch) -> Response[Any]:
    stored = runtime.ledger.incident(incident_id)
    if stored is None:
        raise NotFoundException(f"incident {incident_id!r} not found")
    kind = data.kind or stored["kind"]
    if data.kind is not None and stored["kind"] not in FLIGHT_KINDS:
        raise FactsError(f"kind: a {stored['kind']} incident cannot become a {data.kind}")
    incident = Incident(
        incident_id=incident_id,
        kind=kind,
        occurred_at=stored["occurred_at"],
        facts=patch_facts(kind, data.facts),
    )
    named = named_customers(runtime, data.customers)
    # the count the incident keeps
    affected = stored["customers"] + count_customers(runtime, named)
    if not data.dry_run and affected > runtime.settings.sync_limit:
        job = incident_job(runtime, incident, named, data.budget, must_exist=True)
        return _answer(HTTP_202_ACCEPTED, job)
    outcome = apply_update(
        runtime.parts(),
        incident,
        customer_ids(runtime, named),
        datetime.now(UTC),
        dry_run=data.dry_run,
        must_exist=True,
        budget=data.budget,
    )
    _log_outcome("update", outcome, kind)
    return Response(_result(outcome), status_code=HTTP_200_OK)


@get(
    "/v1/incidents/{incident_id:str}",
    opt={"role": "desk"},
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
    opt={"role": "desk"},
    sync_to_thread=True,
    tags=["incidents"],
    operation_id="listDecisions",
)
def list_decisions(
    state: State,
    request: Request[Any, Any, Any],
    incident_id: FromPath[str],
    step: Annotated[
        int | None, QueryParameter(ge=1, le=MAX_STEP, description="only this step")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1000,
    offset: Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)] = 0,
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
        lines = decisions_ndjson(frame)
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
        decisions=decisions_json(frame),
    )
    return Response(page, headers=headers)


@post(
    "/v1/decisions/preview",
    opt={"role": "desk", "changes": False, "errors": {422: PREVIEW_REFUSED}},
    tags=["incidents"],
    status_code=HTTP_200_OK,
    operation_id="previewDecision",
)
async def preview_decision(state: State, data: JSONBody[PreviewRequest]) -> DecisionOut:
    """What one customer would get for these facts now; nothing recorded, no cap moved."""
    runtime: Runtime = state.runtime
    now, incident = datetime.now(UTC), data.incident()
    found = runtime.previews.look(runtime.parts(), incident, data.customer_id, now, data.budget)
    PREVIEWED["worked_out" if callable(found) else "memory"].inc()
    if isinstance(found, Preview):  # remembered: no thread switch, its JSON sent as it is
        return cast(DecisionOut, preview_json(found))
    mine = await worked_out(state, found) if callable(found) else found
    if mine is None:
        minutes = runtime.policy.notice_minutes
        detail = f"below the noticeability threshold ({minutes} min): nothing would be sent"
        raise ClientException(f"facts.delay_minutes: {detail}", status_code=422)
    return decision_out(mine)


@get(
    "/v1/jobs/{job_id:str}",
    opt={"role": "desk"},
    sync_to_thread=True,
    tags=["incidents"],
    operation_id="getJob",
)
def get_job(state: State, job_id: FromPath[str]) -> JobStatus:
    """Where a background incident update is: queued, running (with its phase), done, failed."""
    runtime: Runtime = state.runtime
    job = jobs.get(runtime.ledger, job_id)
    if job is None:
        raise NotFoundException(f"job {job_id!r} not found")
    message, progress = job.message, job.progress
    live = live_progress(job_id) if job.status == "running" else None
    if live is not None:
        message, progress = live
    return JobStatus(
        job_id=job.job_id,
        subject=job.subject,
        status=job.status,
        progress=progress,
        message=message,
        result=job.result,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


handlers = [
    upload_ids,
    get_job,
    create_incident,
    update_incident,
    get_incident,
    list_decisions,
    preview_decision,
]
