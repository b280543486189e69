"""Profile endpoints for analysts (`/v1/profiles`): look one up, import a file."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Response, delete, get, post
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import Body, FromPath, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_422_UNPROCESSABLE_ENTITY

from api.limits import Limits
from api.runtime import Runtime
from offers.ledger import erase_customer, export_customer
from segmentation.book import mask_personal
from segmentation.importer import RowError, import_profiles
from segmentation.mapping import MappingError, parse_mapping
from segmentation.reading import FORMATS
from segmentation.snapshots import Snapshots

UPLOAD_LIMIT = Limits.from_env().max_upload_bytes
CustomerPath = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


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
    snapshot: str
    quarantine: str | None
    error_count: int
    errors: list[RowError]
    profiles: int  # profiles the service now holds


@dataclass
class ImportForm:
    """Multipart form: the profile file, optional mapping TOML text, optional quarantine."""

    file: UploadFile
    mapping: str | None = None
    quarantine: bool = False


@get(
    "/v1/profiles/{customer_id:str}",
    opt={"role": "analyst"},
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
    opt={"role": "analyst"},
    request_max_body_size=UPLOAD_LIMIT,
    sync_to_thread=True,
    tags=["profiles"],
    status_code=HTTP_201_CREATED,
    operation_id="importProfiles",
)
def import_file(
    state: State,
    data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> Response[Any]:
    """Import a CSV, Parquet, NDJSON or .xlsx file as the new profile snapshot.

    All-or-nothing: any problem gives 422 listing rows, columns and values, and nothing
    changes. With `quarantine=true` good rows load and bad rows are kept in a rejects file.
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
    path = snapshots.save(result.profiles)
    runtime.reload_profiles()
    summary = ImportSummary(
        rows=result.rows,
        loaded=result.profiles.height,
        rejected=result.rejected.height,
        snapshot=path.name,
        quarantine=None if result.quarantine is None else result.quarantine.name,
        error_count=result.error_count,
        errors=list(result.errors),
        profiles=len(runtime.book),
    )
    return Response(summary, status_code=HTTP_201_CREATED)


@get(
    "/v1/profiles/{customer_id:str}/export",
    opt={"role": "analyst"},
    sync_to_thread=True,
    tags=["profiles"],
    operation_id="exportProfile",
)
def export_profile(state: State, customer_id: FromPath[CustomerPath]) -> ProfileExport:
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
    opt={"role": "analyst", "audit_pseudonym": "customer_id"},
    sync_to_thread=True,
    tags=["profiles"],
    status_code=200,
    operation_id="eraseProfile",
)
def erase_profile(state: State, customer_id: FromPath[CustomerPath]) -> Erasure:
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


handlers: list[HTTPRouteHandler] = [get_profile, import_file, export_profile, erase_profile]
