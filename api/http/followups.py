"""The follow-up feed for the messaging system: what is due, each follow-up handed out once.

The feed lists follow-ups in one fixed order (due time, then the decision's key). A page
ends with a cursor naming the last one listed; the next call passes it and the feed goes
on after it. A follow-up is scheduled at least a day after its decision, so one that
becomes due later always lands after a cursor already given out: a sender that keeps its
cursor across polls is handed every follow-up exactly once, however many fall due.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import get
from litestar.datastructures import State
from litestar.exceptions import ClientException
from litestar.params import QueryParameter

from api.http.wire import FollowupDue, FollowupPage
from api.runtime import Runtime
from offers.learning import decision_id_expr
from offers.ledger import FeedPosition, feed_position

__all__ = ["handlers"]

#: A cursor as encoded: the position's parts, the step and slot in the ledger's ranges.
_Cursor = tuple[
    datetime,
    str,
    Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)],
    str,
    Annotated[int, msgspec.Meta(ge=0, le=1)],
]


def encode_cursor(at: FeedPosition) -> str:
    """An opaque cursor for a position in the feed."""
    raw = msgspec.json.encode((at[0].astimezone(UTC), *at[1:]))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> FeedPosition:
    """The position a cursor names; a 400 naming `cursor` for anything this feed did not
    give out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at = msgspec.json.decode(raw, type=_Cursor)
    except (ValueError, msgspec.DecodeError) as exc:  # binascii.Error is a ValueError
        raise ClientException("cursor: not a cursor this feed gave out") from exc
    if at[0].tzinfo is None:
        raise ClientException("cursor: not a cursor this feed gave out")
    return at


@get(
    "/v1/followups",
    opt={
        "role": "desk",
        "errors": {400: "`due_before` without a timezone, or a cursor this feed did not give out."},
    },
    sync_to_thread=True,
    tags=["incidents"],
    operation_id="listFollowups",
)
def list_followups(
    state: State,
    due_before: Annotated[
        datetime,
        QueryParameter(description="ISO time with timezone; a later one than now counts as now"),
    ],
    limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 1000,
    cursor: Annotated[
        str | None,
        QueryParameter(max_length=2048, description="`next_cursor` of the previous page"),
    ] = None,
) -> FollowupPage:
    """Follow-up messages due, for the messaging system to send, each listed once.

    Pages follow one fixed order (due time, then decision); pass a page's `next_cursor` as
    `cursor` to get what follows it. Keep the last cursor between polls: the next poll
    lists only what fell due since, so every follow-up is handed out exactly once. Only
    what is due is listed: a `due_before` later than the server's clock counts as now, so
    a cursor never passes a follow-up that is scheduled later. Without a cursor the feed
    starts at the earliest follow-up.
    """
    if due_before.tzinfo is None:
        raise ClientException("due_before: needs a timezone, e.g. 2026-11-30T00:00:00Z")
    after = decode_cursor(cursor) if cursor is not None else None
    runtime: Runtime = state.runtime
    before = min(due_before, datetime.now(UTC))
    frame = runtime.ledger.followups_due(before, limit + 1, after)
    page = frame.head(limit)
    if page.height:
        last: FeedPosition | None = feed_position(page.row(-1, named=True))
    else:
        last = after
    listed = page.with_columns(decision_id_expr()).to_dicts()
    return FollowupPage(
        followups=msgspec.convert(listed, list[FollowupDue]),
        next_cursor=None if last is None else encode_cursor(last),
        more=frame.height > limit,
    )


handlers = [list_followups]
