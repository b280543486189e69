"""Offer-table, perk and message endpoints for marketing: thin handlers over the catalog.

Client mistakes are 4xx whose detail names the table, rule and field; a publish refused by
validation is a 422 carrying every finding. After a publish or rollback the running engine
reloads its table, so the next incident uses it without a restart.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post, put
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody, QueryParameter, RawBody
from litestar.status_codes import HTTP_200_OK

from api.runtime import Runtime
from offers.catalog.diff import Change, diff_tables
from offers.catalog.tables import (
    OfferTable,
    Perk,
    TableError,
    decode_table,
    dump_table,
    table_from_builtins,
)
from offers.catalog.validate import Checks, Finding, default_columns
from offers.ledger.versions import (
    Draft,
    NotFound,
    Published,
    PublishRefused,
    Ref,
    Store,
    TableSummary,
    VersionInfo,
)
from offers.messages.book import (
    MessageKind,
    Preview,
    Template,
    TemplateFinding,
    preview,
    sample_values,
    validate_book,
)

Language = Literal["en", "zh-Hans", "zh-Hant"]
Channel = Literal["sms", "email", "app", "chat"]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
By = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class PublishIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Text
    by: By = "api"


class RollbackIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: Annotated[int, msgspec.Meta(ge=1)]
    reason: Text
    by: By = "api"


class DraftOut(msgspec.Struct, frozen=True, kw_only=True):
    draft: Draft
    table: OfferTable
    findings: list[Finding]


class ValidationOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    checked: str
    ok: bool
    findings: list[Finding]


class VersionOut(msgspec.Struct, frozen=True, kw_only=True):
    info: VersionInfo
    body: str
    table: OfferTable


class DiffOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    before: str
    after: str
    changes: list[Change]


class MessagesOut(msgspec.Struct, frozen=True, kw_only=True):
    templates: list[Template]
    findings: list[TemplateFinding]


class PreviewIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One message to render: which template (kind, language, channel), which perk."""

    kind: MessageKind = "apology"
    language: Language = "en"
    channel: Channel = "sms"
    incident: str = "flight_delay"
    perk: str | None = None
    first_name: Annotated[str, msgspec.Meta(max_length=64)] = "Mei"
    flight: Annotated[str, msgspec.Meta(max_length=16)] = "MG123"
    delay_minutes: Annotated[int, msgspec.Meta(ge=0, le=10_080)] = 95


def _unprocessable(detail: str, **extra: Any) -> HTTPException:
    return HTTPException(status_code=422, detail=detail, extra=extra or None)


def _store(state: State) -> tuple[Runtime, Store]:
    runtime: Runtime = state.runtime
    return runtime, Store(runtime.engine)


def table_checks(runtime: Runtime) -> Checks:
    """Validate against the active segmentation and the columns the engine has."""
    return Checks(
        segment_names=frozenset(s.name for s in runtime.model.card.segments),
        known_columns=default_columns() | frozenset(runtime.book.frame.columns),
    )


def _ref(text: str) -> Ref:
    if text in ("draft", "live"):
        return text  # type: ignore[return-value]
    digits = text.removeprefix("v")
    if digits.isdigit() and int(digits) >= 1:
        return int(digits)
    raise _unprocessable(f"version {text!r}: use a number, vN, draft or live")


def _table(store: Store, name: str, ref: Ref) -> OfferTable:
    try:
        return store.table(name, ref)
    except NotFound as exc:
        raise NotFoundException(str(exc)) from exc
    except TableError as exc:
        raise _unprocessable(str(exc)) from exc


@get(
    "/v1/perks",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="listPerks",
)
def list_perks(state: State) -> list[Perk]:
    """The perk catalog of the live offer table."""
    runtime: Runtime = state.runtime
    return list(runtime.table().perks)


@get(
    "/v1/offer-tables",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="listOfferTables",
)
def list_tables(state: State) -> list[TableSummary]:
    """Every offer table: its newest published version, whether it is live, any draft."""
    return _store(state)[1].tables()


@get(
    "/v1/offer-tables/{name:str}/versions",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="listOfferTableVersions",
)
def list_versions(state: State, name: FromPath[str]) -> list[VersionInfo]:
    """Published versions of a table, oldest first: who, when and why."""
    versions = _store(state)[1].versions(name)
    if not versions:
        raise NotFoundException(f"offer table {name} has no published version")
    return versions


@get(
    "/v1/offer-tables/{name:str}/versions/{version:int}",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="getOfferTableVersion",
)
def get_version(state: State, name: FromPath[str], version: FromPath[int]) -> VersionOut:
    """One published version: its record, TOML body and parsed table."""
    store = _store(state)[1]
    try:
        found = store.version(name, version)
    except NotFound as exc:
        raise NotFoundException(str(exc)) from exc
    return VersionOut(info=found.info, body=found.body, table=_table(store, name, version))


@put(
    "/v1/offer-tables/{name:str}/draft",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="putOfferTableDraft",
    status_code=HTTP_200_OK,
)
def put_draft(
    state: State,
    request: Request[Any, Any, Any],
    name: FromPath[str],
    body: RawBody,
    by: Annotated[str, QueryParameter(max_length=128, description="who edits")] = "api",
) -> DraftOut:
    """Store a draft: TOML text (any content type but JSON) or the table as JSON.

    The draft is validated and the findings returned; errors do not stop a draft from
    being saved (they stop it from being published).
    """
    runtime, store = _store(state)
    source = f"offer table {name} draft"
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                raw = msgspec.json.decode(body)
            except msgspec.DecodeError as exc:
                raise HTTPException(status_code=400, detail=f"{source}: {exc}") from exc
            table, text = table_from_builtins(raw, source), None
        else:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise HTTPException(status_code=400, detail=f"{source}: not UTF-8") from exc
            table = decode_table(text, source)
    except TableError as exc:
        raise _unprocessable(str(exc)) from exc
    if table.name != name:
        raise _unprocessable(f"{source}, field name: the body names {table.name!r}")
    draft = store.save_draft(table, by, datetime.now(UTC), body=text or dump_table(table))
    return DraftOut(draft=draft, table=table, findings=table_checks(runtime).run(table))


@post(
    "/v1/offer-tables/{name:str}/validate",
    opt={"role": "marketing", "changes": False},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="validateOfferTable",
    status_code=HTTP_200_OK,
)
def validate_table(
    state: State,
    name: FromPath[str],
    ref: Annotated[
        str, QueryParameter(name="version", description="draft (default), live, or N")
    ] = "draft",
) -> ValidationOut:
    """Validate the draft (or a version): every finding, located by rule and field."""
    runtime, store = _store(state)
    which = _ref(ref)
    findings = table_checks(runtime).run(_table(store, name, which))
    ok = not any(f.severity == "error" for f in findings)
    return ValidationOut(name=name, checked=str(ref), ok=ok, findings=findings)


def _published(runtime: Runtime, action: Any) -> Published:
    try:
        published: Published = action()
    except NotFound as exc:
        raise NotFoundException(str(exc)) from exc
    except PublishRefused as exc:
        raise _unprocessable(
            str(exc), findings=[msgspec.to_builtins(f) for f in exc.findings]
        ) from exc
    except TableError as exc:
        raise _unprocessable(str(exc)) from exc
    runtime.reload_table()  # this process switches now; others notice the new version
    return published


@post(
    "/v1/offer-tables/{name:str}/publish",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="publishOfferTable",
    status_code=HTTP_200_OK,
)
def publish_table(state: State, name: FromPath[str], data: JSONBody[PublishIn]) -> Published:
    """Validate and publish the draft as the next version; the engine uses it at once."""
    runtime, store = _store(state)
    return _published(
        runtime,
        lambda: store.publish(
            name,
            by=data.by,
            reason=data.reason,
            now=datetime.now(UTC),
            checks=table_checks(runtime),
        ),
    )


@post(
    "/v1/offer-tables/{name:str}/rollback",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="rollbackOfferTable",
    status_code=HTTP_200_OK,
)
def rollback_table(state: State, name: FromPath[str], data: JSONBody[RollbackIn]) -> Published:
    """Publish an old version again, as a new version whose reason says "rollback to vN"."""
    runtime, store = _store(state)
    return _published(
        runtime,
        lambda: store.rollback(
            name,
            data.version,
            by=data.by,
            reason=data.reason,
            now=datetime.now(UTC),
            checks=table_checks(runtime),
        ),
    )


@get(
    "/v1/offer-tables/{name:str}/diff",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="diffOfferTable",
)
def diff_table(
    state: State,
    name: FromPath[str],
    before: Annotated[str, QueryParameter(name="from", description="N, vN, draft or live")],
    after: Annotated[str, QueryParameter(name="to", description="N, vN, draft or live")] = "draft",
) -> DiffOut:
    """Rules and perks added, removed, moved or changed field by field between two versions."""
    store = _store(state)[1]
    old, new = _table(store, name, _ref(before)), _table(store, name, _ref(after))
    return DiffOut(name=name, before=before, after=after, changes=diff_tables(old, new))


@get(
    "/v1/messages",
    opt={"role": "marketing"},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="listMessages",
)
def list_messages(state: State) -> MessagesOut:
    """The message templates in use, with any SMS-length findings against the live perks."""
    runtime: Runtime = state.runtime
    book = runtime.messages
    titles = [dict(p.title) for p in runtime.table().perks]
    return MessagesOut(templates=list(book.templates), findings=validate_book(book, titles))


@post(
    "/v1/messages/preview",
    opt={"role": "marketing", "changes": False},
    sync_to_thread=True,
    tags=["offers"],
    operation_id="previewMessage",
    status_code=HTTP_200_OK,
)
def preview_message(state: State, data: JSONBody[PreviewIn]) -> Preview:
    """Render one message as a customer would receive it; nothing is recorded."""
    try:
        return render_preview(state.runtime, data)
    except LookupError as exc:
        raise _unprocessable(str(exc)) from exc


def render_preview(runtime: Runtime, data: PreviewIn) -> Preview:
    """One message with sample values and the live table's perk; LookupError: no such perk."""
    table = runtime.table()
    perk = next((p for p in table.perks if p.id == data.perk), None)
    if data.perk is not None and perk is None:
        raise LookupError(f"field perk: unknown perk {data.perk!r} in table {table.name}")
    today: date = datetime.now(UTC).date()
    values = sample_values(
        perk_title=perk.title.get(data.language, perk.title.get("en")) if perk else None,
        valid_until=today + timedelta(days=perk.validity_days) if perk else None,
        first_name=data.first_name,
        flight=data.flight,
        delay_minutes=data.delay_minutes,
    )
    return preview(
        runtime.messages,
        incident=data.incident,
        kind=data.kind,
        language=data.language,
        channel=data.channel,
        values=values,
    )


handlers: list[HTTPRouteHandler] = [
    list_perks,
    list_tables,
    list_versions,
    get_version,
    put_draft,
    validate_table,
    publish_table,
    rollback_table,
    diff_table,
    list_messages,
    preview_message,
]
