"""Segmentation endpoints for analysts (`/v1/segmentations`).

Training can take minutes on large snapshots, so it runs as a background job: POST answers
202 with a job id and a `Location` to poll for status and progress. Jobs run one at a time
in this process (training is CPU- and memory-heavy, and versions are numbered in order).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from litestar import Request, Response, get, patch, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED

from api.http.auth import caller
from api.http.errors import domain_errors
from api.runtime import Runtime
from offers.catalog import Coverage
from offers.ledger import live_segment_names
from offers.live import coverage_warnings, live_coverage
from segmentation.model import ModelCard, SegmentInfo
from segmentation.registry import Registry
from segmentation.spec import FeatureSpec

log = logging.getLogger("makegood")

Snapshot = Annotated[str, msgspec.Meta(pattern=r"^snapshot-[A-Za-z0-9_.-]+\.parquet(?!\n)$")]
SegmentName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}(?!\n)$")]
T = TypeVar("T")


class TrainRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Train a new version on a snapshot in the data folder (default: the newest)."""

    k: Annotated[int, msgspec.Meta(ge=2, le=50)] | None = None
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)] = 7  # what numpy's generators take
    model: Literal["kmeans", "gmm"] = "kmeans"
    snapshot: Snapshot | None = None
    spec: FeatureSpec | None = None
    promote: bool = False


class Job(msgspec.Struct, kw_only=True):
    """A training job's state; `done`/`total` count rows assigned so far."""

    job_id: str
    status: Literal["queued", "running", "succeeded", "failed"] = "queued"
    phase: str = "queued"
    done: int = 0
    total: int | None = None
    version: str | None = None
    promoted: bool = False
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    active: bool
    created_at: datetime
    algorithm: str
    k: int
    rows: int
    silhouette: float
    parent: str | None
    segments: list[str]


class SegmentationOut(msgspec.Struct, frozen=True, kw_only=True):
    active: bool
    card: ModelCard


class Promoted(msgspec.Struct, frozen=True, kw_only=True):
    active: str
    #: per live offer table, which segments of the now active segmentation its rules reach
    coverage: list[Coverage] = []
    #: one per live table whose coverage dropped, naming the segments left to catch-all rules
    warnings: list[str] = []


class SegmentPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: SegmentName | None = None
    description: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


#: Refusals of the registry's routes, for the OpenAPI document (api/http/contract.py).
DROPS_NAME = "The change drops a segment name a rule of the offer table uses (rules named)."
REGISTRY = "The version or name is not valid, or the version cannot be loaded and verified."
MISSING = "A version the registry names is missing."

_TRAINING = threading.Lock()  # one training at a time per process
_JOBS_LOCK = threading.Lock()


def _jobs(state: State) -> dict[str, Job]:
    with _JOBS_LOCK:
        jobs: dict[str, Job] = state.setdefault("segmentation_jobs", {})
    return jobs


def model_registry(runtime: Runtime) -> Registry:
    """The trained versions in the data folder; the admin pages read the same one."""
    return Registry(runtime.settings.data_dir / "models")


def used_names(runtime: Runtime) -> dict[str, list[str]]:
    return live_segment_names(runtime.ledger)


def _switch(state: State, change: Callable[[Registry, dict[str, list[str]]], T]) -> T:
    """Run a registry change that must keep every segment name the offer tables use, then
    serve the new active version in this process at once."""
    runtime: Runtime = state.runtime
    with domain_errors():
        done = change(model_registry(runtime), used_names(runtime))
        runtime.refresh_model()
    return done


def _activate(state: State, change: Callable[[Registry, dict[str, list[str]]], str]) -> Promoted:
    """`_switch` to another active version, and say what that did to the tables' coverage."""
    runtime: Runtime = state.runtime
    before = runtime.traits
    active = _switch(state, change)
    warnings = coverage_warnings(runtime.ledger, before, runtime.traits)
    for warning in warnings:
        log.warning("%s", warning)
    return Promoted(
        active=active,
        coverage=live_coverage(runtime.ledger, runtime.traits),
        warnings=warnings,
    )


def _run(runtime: Runtime, job: Job, request: TrainRequest, by: str) -> None:
    from segmentation.model import train

    def say(message: str) -> None:
        job.phase = message

    def advance(done: int, total: int) -> None:
        job.done, job.total = done, total

    try:
        with _TRAINING:
            job.status = "running"
            registry = model_registry(runtime)
            profiles = runtime.settings.data_dir / "profiles"
            snapshots = sorted(profiles.glob("snapshot-*.parquet"))
            source = profiles / request.snapshot if request.snapshot else None
            if source is None and not snapshots:
                raise LookupError(f"no profile snapshot in {profiles}")
            source = source or snapshots[-1]
            if not source.is_file():
                raise LookupError(f"no snapshot {request.snapshot}")
            active = registry.active()
            model = train(
                source,
                version=registry.next_version(),
                k=request.k,
                seed=request.seed,
                spec=request.spec,
                algorithm=request.model,
                parent=registry.load(active) if active else None,
                progress=say,
                advance=advance,
            )
            registry.save(model)
            job.version = model.card.version
            if request.promote:
                registry.promote(model.card.version, used_names(runtime), by)
                runtime.refresh_model()
                job.promoted = True
        job.status, job.phase = "succeeded", "done"
    except Exception as exc:  # a failed job reports why; the server carries on
        log.warning("segmentation job %s failed: %s", job.job_id, exc)
        job.status, job.error = "failed", str(exc) or type(exc).__name__
    finally:
        job.finished_at = datetime.now(UTC)


@get(
    "/v1/segmentations",
    opt={"role": "analyst"},
    sync_to_thread=True,
    tags=["segmentations"],
    operation_id="listSegmentations",
)
def list_segmentations(state: State) -> list[Summary]:
    """Every trained version, oldest first, with the active one marked."""
    registry = model_registry(state.runtime)
    active = registry.active()
    return [
        Summary(
            version=c.version,
            active=c.version == active,
            created_at=c.created_at,
            algorithm=c.algorithm,
            k=c.k,
            rows=c.rows,
            silhouette=c.silhouette,
            parent=c.parent,
            segments=[s.name for s in c.segments],
        )
        for c in registry.cards()
    ]


@get(
    "/v1/segmentations/{version:str}",
    opt={"role": "analyst", "errors": {422: REGISTRY}},
    sync_to_thread=True,
    tags=["segmentations"],
    operation_id="getSegmentation",
)
def get_segmentation(state: State, version: FromPath[str]) -> SegmentationOut:
    """One version's model card: spec, metrics, named segments, vanished names."""
    registry = model_registry(state.runtime)
    with domain_errors():
        card = registry.card(version)
    return SegmentationOut(active=registry.active() == version, card=card)


@post(
    "/v1/segmentations",
    opt={"role": "analyst"},
    sync_to_thread=False,
    tags=["segmentations"],
    status_code=HTTP_202_ACCEPTED,
    operation_id="trainSegmentation",
)
def train_segmentation(
    state: State, request: Request[Any, Any, Any], data: JSONBody[TrainRequest]
) -> Response[Job]:
    """Start training a new version (names carry over from the active one); poll `Location`."""
    job = Job(job_id=uuid.uuid4().hex, created_at=datetime.now(UTC))
    _jobs(state)[job.job_id] = job
    thread = threading.Thread(
        target=_run,
        args=(state.runtime, job, data, caller(request)),
        name=f"train-{job.job_id[:8]}",
        daemon=True,
    )
    thread.start()
    location = f"/v1/segmentations/jobs/{job.job_id}"
    return Response(job, status_code=HTTP_202_ACCEPTED, headers={"Location": location})


@get(
    "/v1/segmentations/jobs/{job_id:str}",
    opt={"role": "analyst"},
    sync_to_thread=False,
    tags=["segmentations"],
    operation_id="getSegmentationJob",
)
def get_job(state: State, job_id: FromPath[str]) -> Job:
    """Status and progress of a training job."""
    job = _jobs(state).get(job_id)
    if job is None:
        raise NotFoundException(f"no training job {job_id!r}")
    return job


@post(
    "/v1/segmentations/{version:str}/promote",
    opt={"role": "analyst", "errors": {409: DROPS_NAME, 422: REGISTRY}},
    sync_to_thread=True,
    tags=["segmentations"],
    status_code=200,
    operation_id="promoteSegmentation",
)
def promote_segmentation(
    state: State, request: Request[Any, Any, Any], version: FromPath[str]
) -> Promoted:
    """Make a version active; 409 naming the rules if it drops a name the offer table uses."""
    by = caller(request)

    def promote(registry: Registry, used: dict[str, list[str]]) -> str:
        registry.promote(version, used, by)
        return version

    return _activate(state, promote)


@post(
    "/v1/segmentations/rollback",
    opt={"role": "analyst", "errors": {404: MISSING, 409: DROPS_NAME, 422: REGISTRY}},
    sync_to_thread=True,
    tags=["segmentations"],
    status_code=200,
    operation_id="rollbackSegmentation",
)
def rollback_segmentation(state: State, request: Request[Any, Any, Any]) -> Promoted:
    """Re-activate the version that was active before the current one."""
    by = caller(request)
    return _activate(state, lambda registry, used: registry.rollback(used, by))


@patch(
    "/v1/segmentations/{version:str}/segments/{name:str}",
    opt={"role": "analyst", "errors": {409: DROPS_NAME, 422: REGISTRY}},
    sync_to_thread=True,
    tags=["segmentations"],
    operation_id="renameSegment",
)
def rename_segment(
    state: State,
    request: Request[Any, Any, Any],
    version: FromPath[str],
    name: FromPath[str],
    data: JSONBody[SegmentPatch],
) -> SegmentInfo:
    """Rename a segment and/or set its description; later versions carry it over."""
    new = data.name or name
    by = caller(request)
    card = _switch(
        state,
        lambda registry, used: registry.rename(version, name, new, data.description, used, by),
    )
    return card.segment(new)


handlers: list[HTTPRouteHandler] = [
    list_segmentations,
    get_segmentation,
    train_segmentation,
    get_job,
    promote_segmentation,
    rollback_segmentation,
    rename_segment,
]
