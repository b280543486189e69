"""Message-book endpoints for marketing: drafts, checks, previews, diffs, publishing, history.

Thin handlers over `offers.ledger.MessageStore`, mirroring the offer-table routes. A book is
named for the incident kind it serves (`generic` for the rest). A publish refused by the
checks is a 422 carrying every finding; after a publish or rollback this process serves the
new wording at once and other workers within a second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post, put
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter, RawBody
from litestar.status_codes import HTTP_200_OK

from api.http.auth import caller
from api.http.errors import domain_errors, unprocessable
from api.http.offer_tables import PublishIn, RollbackIn, VersionQuery, version_ref
from api.numbers import INT32_MAX
from api.runtime import Runtime
from offers.catalog import OfferTable
from offers.ledger import BookPublished, BookSummary, Draft, MessageStore, VersionInfo
from offers.ledger.message_versions import Check
from offers.messages import (
    BOOK_NAMES,
    GENERIC,
    BookChange,
    MessageBook,
    MessageKind,
    Preview,
    TemplateFinding,
    book_findings,
    book_incident,
    decode_book,
    preview,
    sample_values,
)
from segmentation.profiles import CHANNELS, LANGUAGES

__all__ = ["book_check", "handlers", "message_store", "preview_all", "served_table"]

REFUSED = "The book has errors: every finding is in `extra.findings`; nothing is published."


class BookDraftOut(msgspec.Struct, frozen=True, kw_only=True):
    draft: Draft
    findings: list[TemplateFinding]


class BookCheckOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    checked: str
    ok: bool
    findings: list[TemplateFinding]


class BookVersionOut(msgspec.Struct, frozen=True, kw_only=True):
    info: VersionInfo
    body: str
    book: MessageBook


class BookDiffOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    before: str
    after: str
    changes: list[BookChange]


class BookPreviewIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which message of which version to render, in every language and channel."""

    version: str = "draft"
    kind: MessageKind = "apology"
    perk: str | None = None
    first_name: Annotated[str, msgspec.Meta(max_length=64)] = "Mei"
    flight: Annotated[str, msgspec.Meta(max_length=16)] = "MG123"
    delay_minutes: Annotated[int, msgspec.Meta(ge=0, le=10_080)] = 95


class BookPreviewOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str
    previews: list[Preview]


def message_store(state: State) -> tuple[Runtime, MessageStore]:
    """The runtime and its message-book store; the admin pages pass `request.app.state`."""
    runtime: Runtime = state.runtime
    return runtime, MessageStore(runtime.engine)


def served_table(runtime: Runtime, name: str) -> OfferTable:
    """The live table a book's messages go out with: its incident kind's (`generic`: the
    flight-delay table's, the default kind)."""
    return runtime.table(book_incident(name) if name != GENERIC else "flight_delay")


def book_check(runtime: Runtime) -> Check:
    """Check a book against the perk titles of its kind's live table (SMS worst cases use
    them; the generic book, every live table's)."""

    def check(name: str, book: MessageBook) -> list[TemplateFinding]:
        kinds = [book_incident(name)] if name != GENERIC else list(runtime.tables.versions)
        titles = [dict(p.title) for kind in kinds for p in runtime.table(kind).perks]
        return book_findings(name, book, titles)

    return check


def _known(name: str) -> None:
    if name not in BOOK_NAMES:
        raise NotFoundException(
            f"no message book {name!r}: books are named {', '.join(BOOK_NAMES)}"
        )


def preview_all(
    runtime: Runtime,
    name: str,
    book: MessageBook,
    kind: str,
    perk_id: str | None,
    *,
    first_name: str = "Mei",
    flight: str = "MG123",
    delay_minutes: int = 95,
) -> list[Preview]:
    """One message of `book` in every language and channel, filled with sample values and
    the live table's perk; LookupError: no such perk."""
    table = served_table(runtime, name)
    perk = next((p for p in table.perks if p.id == perk_id), None)
    if perk_id is not None and perk is None:
        raise LookupError(f"field perk: unknown perk {perk_id!r} in table {table.name}")
    today = datetime.now(UTC).date()
    out = []
    for language in LANGUAGES:
        values = sample_values(
            perk_title=perk.title.get(language, perk.title.get("en")) if perk else None,
            valid_until=today + timedelta(days=perk.validity_days) if perk else None,
            first_name=first_name,
            flight=flight,
            delay_minutes=delay_minutes,
        )
        for channel in CHANNELS:
            out.append(
                preview(
                    book,
                    incident=book_incident(name),
                    kind=kind,
                    language=language,
                    channel=channel,
                    values=values,
                )
            )
    return out


_ROLE = {"role": "marketing"}
_TAGS = ["messages"]


@get("/v1/message-books", opt=_ROLE, sync_to_thread=True, tags=_TAGS, operation_id="listBooks")
def list_books(state: State) -> list[BookSummary]:
    """Every message book: its newest published version and whether a draft waits."""
    return message_store(state)[1].books()


@get(
    "/v1/message-books/{name:str}/versions",
    opt=_ROLE,
    sync_to_thread=True,
    tags=_TAGS,
    operation_id="listBookVersions",
)
def list_versions(state: State, name: FromPath[str]) -> list[VersionInfo]:
    """Published versions of a book, oldest first: who, when and why."""
    versions = message_store(state)[1].versions(name)
    if not versions:
        raise NotFoundException(f"message book {name} has no published version")
    return versions


@get(
    "/v1/message-books/{name:str}/versions/{version:int}",
    opt=_ROLE,
    sync_to_thread=True,
    tags=_TAGS,
    operation_id="getBookVersion",
)
def get_version(
    state: State,
    name: FromPath[str],
    version: Annotated[int, PathParameter(ge=1, le=INT32_MAX, description="a published version")],
) -> BookVersionOut:
    """One published version: its record, TOML body and templates."""
    store = message_store(state)[1]
    with domain_errors():
        found = store.version(name, version)
        book = store.book(name, version)
    return BookVersionOut(info=found.info, body=found.body, book=book)


@put(
    "/v1/message-books/{name:str}/draft",
    opt=_ROLE,
    sync_to_thread=True,
    tags=_TAGS,
    operation_id="putBookDraft",
    status_code=HTTP_200_OK,
)
def put_draft(
    state: State,
    request: Request[Any, Any, Any],
    name: FromPath[str],
    body: RawBody,
    by: Annotated[
        str | None, QueryParameter(max_length=128, description="who edits, if not the key")
    ] = None,
) -> BookDraftOut:
    """Store a draft (TOML, `[[templates]]`); its findings come back. Errors do not stop a
    draft from being saved (they stop it from being published)."""
    _known(name)
    runtime, store = message_store(state)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(status_code=400, detail=f"message book {name}: not UTF-8") from exc
    with domain_errors():
        book = decode_book(text, f"message book {name} draft")
    draft = store.save_draft(name, text, caller(request, by), datetime.now(UTC))
    return BookDraftOut(draft=draft, findings=book_check(runtime)(name, book))


@post(
    "/v1/message-books/{name:str}/validate",
    opt={**_ROLE, "changes": False},
    sync_to_thread=True,
    tags=_TAGS,
    operation_id="validateBook",
    status_code=HTTP_200_OK,
)
def validate_book(state: State, name: FromPath[str], ref: VersionQuery = "draft") -> BookCheckOut:
    """Check the draft (or a version): placeholders, languages, channels, SMS budgets."""
    runtime, store = message_store(state)
    with domain_errors():
        book = store.book(name, version_ref(ref))
    findings = book_check(runtime)(name, book)
    ok = not any(f.severity == "error" for f in findings)
    return BookCheckOut(name=name, checked=str(ref), ok=ok, findings=findings)


@post(
    "/v1/message-books/{name:str}/preview",
    opt={**_ROLE, "changes": False},
    sync_to_thread=True,
    tags=_TAGS,
    operation_id="previewBook",
    status_code=HTTP_200_OK,
)
def preview_book(
    state: State, name: FromPath[str], data: JSONBody[BookPreviewIn]
) -> BookPreviewOut:
    """One message of the draft (or a version) in every language and channel, as sent."""
    runtime, store = message_store(state)
    with domain_errors():
        book = store.book(name, version_ref(data.version))
    try:
        shown = preview_all(
            runtime,
            name,
            book,
            data.kind,
            data.perk,
            first_name=data.first_name,
            flight=data.flight,
            delay_minutes=data.delay_minutes,
        )
    except LookupError as exc:  # an unknown perk is a bad field here
        raise unprocessable(str(exc)) from exc
    return BookPreviewOut(name=name, version=data.version, previews=shown)


def _publish(
    state: State, request: Request[Any, Any, Any], name: str, data: PublishIn | RollbackIn
) -> BookPublished:
    runtime, store = message_store(state)
    signed: dict[str, Any] = {
        "by": caller(request, data.by),
        "reason": data.reason,
        "now": datetime.now(UTC),
        "check": book_check(runtime),
    }
    with domain_errors():
        if isinstance(data, RollbackIn):
            published = store.rollback(name, data.version, **signed)
        else:
            published = store.publish(name, **signed)
    runtime.reload_messages()
    return published


@post(
    "/v1/message-books/{name:str}/publish",
    opt={**_ROLE, "errors": {422: REFUSED}},
    sync_to_thread=True,
    tags=_TAGS,
    operation_id="publishBook",
    status_code=HTTP_200_OK,
)
def publish_book(
    state: State, request: Request[Any, Any, Any], name: FromPath[str], data: JSONBody[PublishIn]
) -> BookPublished:
    """Check and publish the draft as the next version; incidents use it at once."""
    return _publish(state, request, name, data)


@post(
    "/v1/message-books/{name:str}/rollback",
    opt={**_ROLE, "errors": {422: REFUSED}},
    sync_to_thread=True,
    tags=_TAGS,
    operation_id="rollbackBook",
    status_code=HTTP_200_OK,
)
def rollback_book(
    state: State, request: Request[Any, Any, Any], name: FromPath[str], data: JSONBody[RollbackIn]
) -> BookPublished:
    """Publish an old version again, as a new version whose reason says "rollback to vN"."""
    return _publish(state, request, name, data)


@get(
    "/v1/message-books/{name:str}/diff",
    opt=_ROLE,
    sync_to_thread=True,
    tags=_TAGS,
    operation_id="diffBook",
)
def diff_book(
    state: State,
    name: FromPath[str],
    before: Annotated[str, QueryParameter(name="from", description="N, vN, draft or live")],
    after: Annotated[str, QueryParameter(name="to", description="N, vN, draft or live")] = "draft",
) -> BookDiffOut:
    """Templates added, removed or changed (text, nameless) between two versions."""
    store = message_store(state)[1]
    with domain_errors():
        changes = store.diff(name, version_ref(before), version_ref(after))
    return BookDiffOut(name=name, before=before, after=after, changes=changes)


handlers: list[HTTPRouteHandler] = [
    list_books,
    list_versions,
    get_version,
    put_draft,
    validate_book,
    preview_book,
    publish_book,
    rollback_book,
    diff_book,
]
