"""Profile endpoints for analysts (`/v1/profiles`): look one up, import a file, roll back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, delete, get, post
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import Body, FromPath, PathParameter, QueryParameter
from litestar.status_codes import (
    HTTP_201_CREATED,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
)

from api.limits import Limits
from api.runtime import Runtime
from offers.ledger import erase_customer, export_customer
from segmentation.book import ProfileBook, mask_personal
from segmentation.importer import RowError, import_profiles
from segmentation.mapping import MappingError, parse_mapping
from segmentation.reading import FORMATS
from segmentation.snapshots import Snapshots, Staged, TooManyRemoved

UPLOAD_LIMIT = Limits.from_env().max_upload_bytes
CustomerPath = Annotated[str, PathParameter(min_length=1, max_length=64)]


class SegmentRef(msgspec.Struct, frozen=True, kw_only=True):
    name: str | None
    description: str | None


class ProfileView(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    segment: SegmentRef
    profile: dict[str, Any]


class ProfileExport(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the service holds about one customer: profile, segment, ledger rows."""

    customer_id: str
    profile: dict[str, Any] | None
    segment: SegmentRef | None
    ledger: dict[str, list[dict[str, Any]]]  # table name -> rows (decisions, follow-ups…)
    exported_at: datetime


class Erasure(msgspec.Struct, frozen=True, kw_only=True):
    """What erasing one customer changed; the ledger keeps counts and costs under `pseudonym`."""

    customer_id: str
    pseudonym: str
    profile_files: int
    profile_rows: int
    ledger_rows: dict[str, int]
    texts: int
    replays: int


class ImportSummary(msgspec.Struct, frozen=True, kw_only=True):
    rows: int
    loaded: int
    rejected: int
    mode: Literal["upsert", "replace"]
    added: int
    updated: int
    removed: int
    snapshot: str
    quarantine: str | None
    error_count: int
    errors: list[RowError]
    profiles: int  # profiles the service now holds


class RollbackSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A rollback: the snapshot served again, written as the newest one, and the change."""

    restored: str
    snapshot: str
    added: int
    updated: int
    removed: int
    profiles: int


@dataclass
class ImportForm:
    """Multipart form: the profile file, optional mapping TOML text, optional quarantine.

    `mode`: `upsert` adds new ids and updates known ones, nobody is removed; `replace` makes
    the file every customer, refused when it would remove more than the allowed share of
    them (MAKEGOOD_MAX_REMOVED_SHARE) unless `force` is true.
    """

    file: UploadFile
    mapping: str | None = None
    quarantine: bool = False
    mode: Literal["upsert", "replace"] = "upsert"
    force: bool = False


#: `/v1/profiles/import` and `/v1/profiles/rollback` are routes of their own (POST), so a
#: customer whose id is one of those words cannot be named in these paths.
RESERVED_ID = {405: "the customer id is `import` or `rollback`, the names of other routes"}


@get(
    "/v1/profiles/{customer_id:str}",
    opt={"role": "analyst", "errors": RESERVED_ID},
    sync_to_thread=False,
    tags=["profiles"],
    operation_id="getProfile",
)
def get_profile(
    state: State,
    customer_id: FromPath[str],
    reveal: Annotated[bool, QueryParameter(description="show email and phone unmasked")] = False,
) -> ProfileView:
    """One customer's profile and segment; contact details masked unless `reveal=true`."""
    runtime: Runtime = state.runtime
    row = runtime.book.one(customer_id)
    if row is None:
        raise NotFoundException(f"profile {customer_id!r} not found")
    segment = SegmentRef(name=row.pop("segment"), description=row.pop("segment_description"))
    return ProfileView(
        customer_id=customer_id,
        segment=segment,
        profile=row if reveal else mask_personal(row),
    )


def _unprocessable(detail: str, errors: list[RowError], count: int) -> Response[Any]:
    body = {"status_code": 422, "detail": detail, "error_count": count, "extra": errors}
    return Response(body, status_code=HTTP_422_UNPROCESSABLE_ENTITY)


@post(
    "/v1/profiles/import",
    opt={
        "role": "analyst",
        "errors": {
            409: "A replace would remove more than the allowed share (send `force`), or there "
            "are no profiles to change.",
            422: "Rows, columns or values that do not fit, each in `extra` with `error_count`; "
            "an unknown file type or mapping. Nothing changes.",
        },
    },
    request_max_body_size=UPLOAD_LIMIT,
    sync_to_thread=True,
    tags=["profiles"],
    status_code=HTTP_201_CREATED,
    operation_id="importProfiles",
)
def import_file(
    state: State,
    data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> Response[ImportSummary]:
    """Import a CSV, Parquet, NDJSON or .xlsx file into the served profiles as a new snapshot.

    `mode=upsert` (the default) adds new ids and updates known ones; `mode=replace` makes the
    file every customer. The answer counts the customers added, updated and removed; the
    previous snapshot is kept for `POST /v1/profiles/rollback`. All-or-nothing: any problem
    gives 422 listing rows, columns and values, a replace removing too many gives 409, and
    nothing changes. With `quarantine=true` good rows load and bad rows are kept in a
    rejects file.
    """
    runtime: Runtime = state.runtime
    fmt = FORMATS.get(Path(data.file.filename or "").suffix.lower())
    if fmt is None:
        return _unprocessable(f"file: use one of {', '.join(FORMATS)}", [], 1)
    try:
        mapping = parse_mapping(data.mapping) if data.mapping else None
    except MappingError as exc:
        return _unprocessable(f"mapping: {exc}", [], 1)
    snapshots = Snapshots(runtime.settings.data_dir)
    rejects = None
    if data.quarantine:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        rejects = snapshots.folder / f"rejects-{stamp}-{uuid.uuid4().hex[:6]}.parquet"
    result = import_profiles(data.file.file.read(), mapping, rejects, fmt=fmt)
    if not result.ok:
        detail = f"import failed: {result.error_count} problems in {result.rows} rows"
        return _unprocessable(detail, list(result.errors), result.error_count)
    supplied = None if result.supplied is None else list(result.supplied)
    limit = runtime.settings.limits.max_removed_share
    path, staged = _serve(
        runtime,
        lambda: snapshots.stage_import(
            result.profiles, data.mode, supplied=supplied, max_removed_share=limit, force=data.force
        ),
    )
    result.write_quarantine()
    summary = ImportSummary(
        rows=result.rows,
        loaded=result.profiles.height,
        rejected=result.rejected.height,
        mode=data.mode,
        added=staged.change.added,
        updated=staged.change.updated,
        removed=staged.change.removed,
        snapshot=path.name,
        quarantine=None if result.quarantine is None else result.quarantine.name,
        error_count=result.error_count,
        errors=list(result.errors),
        profiles=len(runtime.book),
    )
    return Response(summary, status_code=HTTP_201_CREATED)


def _serve(runtime: Runtime, stage: Callable[[], Staged]) -> tuple[Path, Staged]:
    """Stage a population, segment it, write it as the newest snapshot, then serve it.

    Everything that can fail comes before the write, so a refused request leaves the
    folder as it was and the next start serves what this process serves.
    """
    snapshots = Snapshots(runtime.settings.data_dir)
    with snapshots.lock():
        try:
            staged = stage()
            book = ProfileBook(staged.profiles, runtime.model)
        except TooManyRemoved as exc:
            detail = f"{exc}; nothing written (send force=true to replace anyway)"
            extra = {
                "removed": exc.change.removed,
                "before": exc.change.before,
                "removed_share": exc.change.removed_share,
                "max_removed_share": exc.limit,
            }
            raise HTTPException(detail=detail, status_code=HTTP_409_CONFLICT, extra=extra) from exc
        except LookupError as exc:
            raise HTTPException(detail=str(exc), status_code=HTTP_409_CONFLICT) from exc
        except ValueError as exc:
            raise HTTPException(detail=str(exc), status_code=HTTP_422_UNPROCESSABLE_ENTITY) from exc
        path = snapshots.commit(staged)
    runtime.book = book
    return path, staged


@post(
    "/v1/profiles/rollback",
    opt={
        "role": "analyst",
        "errors": {
            409: "Nothing older to roll back to.",
            422: "The older snapshot cannot be served.",
        },
    },
    sync_to_thread=True,
    tags=["profiles"],
    status_code=200,
    operation_id="rollbackProfiles",
)
def rollback_profiles(state: State) -> RollbackSummary:
    """Serve the profiles served before the newest snapshot again.

    The restored population is written as a new newest snapshot, so no history is lost;
    rolling back again goes one step further into the past. 409 when there is nothing older.
    """
    runtime: Runtime = state.runtime
    snapshots = Snapshots(runtime.settings.data_dir)
    path, staged = _serve(runtime, snapshots.stage_rollback)
    return RollbackSummary(
        restored=snapshots.path(staged.restores or 0).name,
        snapshot=path.name,
        added=staged.change.added,
        updated=staged.change.updated,
        removed=staged.change.removed,
        profiles=len(runtime.book),
    )


@get(
    "/v1/profiles/{customer_id:str}/export",
    opt={"role": "analyst"},
    sync_to_thread=True,
    tags=["profiles"],
    operation_id="exportProfile",
)
def export_profile(state: State, customer_id: CustomerPath) -> ProfileExport:
    """All the service holds about one customer (a data subject's access request)."""
    runtime: Runtime = state.runtime
    row = runtime.book.one(customer_id)
    ledger = export_customer(runtime.engine, customer_id)
    if row is None and not any(ledger.values()):
        raise NotFoundException(f"profile {customer_id!r} not found")
    segment = None
    if row is not None:
        segment = SegmentRef(name=row.pop("segment"), description=row.pop("segment_description"))
    return ProfileExport(
        customer_id=customer_id,
        profile=row,
        segment=segment,
        ledger=ledger,
        exported_at=datetime.now(UTC),
    )


@delete(
    "/v1/profiles/{customer_id:str}",
    opt={"role": "analyst", "audit_pseudonym": "customer_id", "errors": RESERVED_ID},
    sync_to_thread=True,
    tags=["profiles"],
    status_code=200,
    operation_id="eraseProfile",
)
def erase_profile(state: State, customer_id: CustomerPath) -> Erasure:
    """Erase a customer: profile rows in every snapshot, the name in stored messages.

    The ledger keeps the customer's decisions, counts and costs under a pseudonym.
    """
    runtime: Runtime = state.runtime
    profiles = Snapshots(runtime.settings.data_dir).erase(customer_id)
    names = set(profiles.first_names)
    row = runtime.book.one(customer_id)
    if row is not None and row.get("first_name"):
        names.add(row["first_name"])
    ledger = erase_customer(runtime.engine, customer_id, names)
    if not profiles.rows and row is None and not any(ledger.rows.values()):
        raise NotFoundException(f"profile {customer_id!r} not found")
    if profiles.rows:
        runtime.reload_profiles()
    return Erasure(
        customer_id=customer_id,
        pseudonym=ledger.pseudonym,
        profile_files=profiles.files,
        profile_rows=profiles.rows,
        ledger_rows=ledger.rows,
        texts=ledger.texts,
        replays=ledger.replays,
    )


handlers: list[HTTPRouteHandler] = [
    get_profile,
    import_file,
    rollback_profiles,
    export_profile,
    erase_profile,
]
