"""Message endpoints for marketing: the templates in use and a preview of any one message.

`render_preview` is also what the admin message pages call, so a page shows exactly what
this API and the engine would send. Nothing here is recorded.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

import msgspec
from litestar import get, post
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from api.http.errors import unprocessable
from api.runtime import Runtime
from offers.messages import (
    MessageKind,
    Preview,
    Template,
    TemplateFinding,
    preview,
    sample_values,
    validate_book,
)

__all__ = ["Channel", "Language", "PreviewIn", "handlers", "render_preview"]

Language = Literal["en", "zh-Hans", "zh-Hant"]
Channel = Literal["sms", "email", "app", "chat"]


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
    book = runtime.wording()
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
    except LookupError as exc:  # an unknown perk is a bad field here, not a missing resource
        raise unprocessable(str(exc)) from exc


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
        runtime.wording(),
        incident=data.incident,
        kind=data.kind,
        language=data.language,
        channel=data.channel,
        values=values,
    )


handlers: list[HTTPRouteHandler] = [list_messages, preview_message]
