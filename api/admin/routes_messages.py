"""Message pages for marketing: every language and channel of one message, with SMS counts.

Rendering is `api.http.messages.render_preview`, the JSON preview route's own function, so
a page shows exactly what the API and the engine would send. Nothing is recorded.
"""

from __future__ import annotations

from typing import Any, get_args

import msgspec
from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

from api.admin.render import page, see_other
from api.http.messages import Channel, Language, PreviewIn, render_preview
from api.numbers import whole_number
from api.runtime import Runtime
from offers.ledger import MessageStore
from offers.messages import BOOK_NAMES, MessageKind, validate_book

__all__ = ["handlers"]

LANGUAGES: tuple[str, ...] = get_args(Language)
CHANNELS: tuple[str, ...] = get_args(Channel)
KINDS: tuple[str, ...] = get_args(MessageKind)


def _request(query: Any) -> tuple[dict[str, str], PreviewIn | None, dict[str, list[str]]]:
    """The query as form values, the preview it asks for, and errors by field."""
    values = {
        "kind": query.get("kind", "apology"),
        "incident": query.get("incident", "flight_delay"),
        "perk": query.get("perk", ""),
        "delay_minutes": query.get("delay_minutes", "95"),
    }
    raw: dict[str, Any] = {k: v for k, v in values.items() if v != ""}
    delay = values["delay_minutes"].strip()
    number = whole_number(delay)
    raw["delay_minutes"] = delay if number is None else number
    try:
        return values, msgspec.convert(raw, PreviewIn), {}
    except msgspec.ValidationError as exc:
        text = str(exc)
        field = text.rsplit("$.", 1)[-1].rstrip("`") if "$." in text else "kind"
        return values, None, {field: [text.split(" - at ")[0]]}


@get("/messages", opt={"page": "marketing"}, include_in_schema=False, sync_to_thread=True)
def messages(request: Request[Any, Any, Any]) -> Response[str]:
    """One message kind in every language and channel, as customers would read it."""
    runtime: Runtime = request.app.state.runtime
    values, wanted, problems = _request(request.query_params)
    previews: dict[tuple[str, str], Any] = {}
    if wanted is not None:
        try:
            for language in LANGUAGES:
                for channel in CHANNELS:
                    one = msgspec.structs.replace(wanted, language=language, channel=channel)
                    previews[(language, channel)] = render_preview(runtime, one)
        except LookupError as exc:
            problems = {"perk": [str(exc).partition(": ")[2]]}
            previews = {}
    table = runtime.table()
    book = runtime.wording()
    return page(
        request,
        "messages.html.j2",
        422 if problems else 200,
        values=values,
        problems=problems,
        previews=previews,
        languages=LANGUAGES,
        channels=CHANNELS,
        kinds=KINDS,
        incidents=sorted({t.incident for t in book.templates}),
        perks=table.perks,
        templates=book.templates,
        books={b.name: b for b in MessageStore(runtime.engine).books()},
        book_names=BOOK_NAMES,
        findings=validate_book(book, [dict(p.title) for p in table.perks]),
    )


@get("/perks", opt={"page": "marketing"}, include_in_schema=False, sync_to_thread=False)
def perks(request: Request[Any, Any, Any]) -> Response[Any]:
    """The live table's perks, in the draft editor."""
    runtime: Runtime = request.app.state.runtime
    return see_other(f"/admin/offers/{runtime.table_version[0]}/perks")


handlers: list[HTTPRouteHandler] = [messages, perks]
