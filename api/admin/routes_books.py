"""Message-book pages for marketing: edit a book's wording, check and preview it in every
language and channel, publish it with a reason, see its history and roll back.

Every change goes through `offers.ledger.MessageStore` with the JSON routes' checks and
previews (`api.http.message_books`), so a page can do nothing the API could not. Bad input
re-renders the page with the problem beside its field and a 4xx status; nothing is saved.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from api.admin.render import page, see_other
from api.admin.routes_auth import form_route
from api.http.auth import caller
from api.http.message_books import book_check, message_store, preview_all, served_table
from api.numbers import INT32_MAX, whole_number
from api.runtime import Runtime
from offers.ledger import BookRefused, MessageStore, NotFound
from offers.messages import (
    BOOK_NAMES,
    MessageBook,
    MessageKind,
    TemplateError,
    decode_book,
    diff_books,
)

__all__ = ["handlers"]

MARKETING = {"page": "marketing"}
KINDS: tuple[str, ...] = get_args(MessageKind)
MAX_BODY = 200_000


def _known(name: str) -> None:
    if name not in BOOK_NAMES:
        raise NotFoundException(f"no message book {name!r}")


def _book_page(
    request: Request[Any, Any, Any], name: str, status: int = 200, **extra: Any
) -> Response[str]:
    """The book's editor: the text being edited (the draft, else a copy of the newest
    version), its findings, its changes against the newest version, and a preview."""
    _known(name)
    runtime, store = message_store(request.app.state)
    versions = store.versions(name)
    draft = store.draft(name)
    latest = store.latest(name)
    text = extra.pop("text", None)
    if text is None:
        text = draft.body if draft else latest.body if latest else _start(store, name)
    kind = request.query_params.get("kind", extra.pop("kind", "apology"))
    kind = kind if kind in KINDS else "apology"
    problem = extra.pop("problem", None)
    book: MessageBook | None = None
    try:
        book = decode_book(text, "the text")
    except TemplateError as exc:
        problem = problem or str(exc)
    findings = book_check(runtime)(name, book) if book else []
    before = decode_book(latest.body) if latest else MessageBook(templates=[])
    readable = book is not None and not any(f.severity == "error" for f in findings)
    previews = {}
    if readable and book is not None:
        shown = preview_all(runtime, name, book, kind, _a_perk(runtime, name))
        previews = {(p.language, p.channel): p for p in shown}
    return page(
        request,
        "book.html.j2",
        status,
        name=name,
        versions=versions,
        draft=draft,
        text=text,
        kind=kind,
        kinds=KINDS,
        problem=problem,
        findings=findings,
        changes=diff_books(before, book) if book else [],
        previews=previews,
        languages=("en", "zh-Hans", "zh-Hant"),
        channels=("sms", "email", "app", "chat"),
        **({"flash": request.query_params.get("flash"), "reason": "", "reason_error": None}
           | extra),
    )  # fmt: skip


def _start(store: MessageStore, name: str) -> str:
    """A book not yet written starts as a copy of the generic wording, for its kind."""
    generic = store.latest("generic")
    if generic is None:
        return ""
    return generic.body.replace('incident = "*"', f'incident = "{name}"')


def _a_perk(runtime: Runtime, name: str) -> str | None:
    """Previews carry the live table's first perk, so the perk line shows too."""
    perks = served_table(runtime, name).perks
    return perks[0].id if perks else None


@get("/messages/books/{name:str}", opt=MARKETING, include_in_schema=False, sync_to_thread=True)
def book(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[str]:
    """One message book: edit, check, preview, publish, history."""
    return _book_page(request, name)


def _text(form: dict[str, str]) -> str:
    return form.get("body", "").replace("\r\n", "\n")


def _save(request: Request[Any, Any, Any], name: str, form: dict[str, str]) -> Response[Any]:
    """ "check" shows the findings and previews of the text; "save" stores it as the draft."""
    _known(name)
    text = _text(form)
    if len(text) > MAX_BODY:
        return _book_page(request, name, 413, text=text[:MAX_BODY], problem="The text is too long.")
    try:
        decode_book(text, "the text")
    except TemplateError as exc:
        return _book_page(request, name, 422, text=text, problem=str(exc))
    if form.get("action") != "save":
        return _book_page(request, name, text=text, kind=form.get("kind", "apology"))
    store = message_store(request.app.state)[1]
    store.save_draft(name, text, caller(request), datetime.now(UTC))
    return see_other(f"/admin/messages/books/{name}?flash=Draft+saved.")


save = form_route("/messages/books/{name:str}", MARKETING, _save)


def _publish(request: Request[Any, Any, Any], name: str, form: dict[str, str]) -> Response[Any]:
    """Publish the draft as the JSON route does; incidents use it at once."""
    _known(name)
    runtime, store = message_store(request.app.state)
    reason = form.get("reason", "").strip()
    if not reason or len(reason) > 2000:
        why = "Say why, in a few words (at most 2,000 characters)."
        return _book_page(request, name, 422, reason=reason, reason_error=why)
    try:
        published = store.publish(
            name,
            by=caller(request),
            reason=reason,
            now=datetime.now(UTC),
            check=book_check(runtime),
        )
    except NotFound:
        why = "There is no draft to publish: save one first."
        return _book_page(request, name, 422, reason=reason, reason_error=why)
    except (BookRefused, TemplateError):
        why = "The draft has errors (listed below); nothing was published."
        return _book_page(request, name, 422, reason=reason, reason_error=why)
    runtime.reload_messages()
    version = published.info.version
    return see_other(f"/admin/messages/books/{name}?flash=Published+v{version}:+live+now.")


publish = form_route("/messages/books/{name:str}/publish", MARKETING, _publish)


def _rollback(request: Request[Any, Any, Any], name: str, form: dict[str, str]) -> Response[Any]:
    _known(name)
    runtime, store = message_store(request.app.state)
    text = form.get("version", "")
    version = whole_number(text, INT32_MAX)
    if version is None:
        wrong = f"version {text[:20]!r}: a number from 1 to {INT32_MAX}"
        return _book_page(request, name, 422, problem=wrong)
    try:
        published = store.rollback(
            name,
            version,
            by=caller(request),
            reason=form.get("reason", "").strip()[:2000],
            now=datetime.now(UTC),
            check=book_check(runtime),
        )
    except (NotFound, BookRefused, TemplateError) as exc:
        return _book_page(request, name, 422, problem=str(exc))
    runtime.reload_messages()
    number = published.info.version
    return see_other(f"/admin/messages/books/{name}?flash=Rolled+back:+v{number}+is+live+now.")


rollback = form_route("/messages/books/{name:str}/rollback", MARKETING, _rollback)


def _discard(request: Request[Any, Any, Any], name: str, _form: dict[str, str]) -> Response[Any]:
    _known(name)
    message_store(request.app.state)[1].delete_draft(name)
    return see_other(f"/admin/messages/books/{name}?flash=Draft+discarded.")


discard = form_route("/messages/books/{name:str}/discard", MARKETING, _discard)

handlers: list[HTTPRouteHandler] = [book, save, publish, rollback, discard]
