"""Feedback intake, draft simulation and the offers report: thin handlers over offers.*."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
import polars as pl
from litestar import MediaType, Response, get, post
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from api.http.errors import domain_errors
from api.http.offer_tables import VersionQuery, offer_store, version_ref
from api.runtime import Runtime
from offers.catalog import OfferTable
from offers.learning import (
    EventResult,
    FeedbackEvent,
    Simulation,
    events_frame,
    parse_since,
    record_feedback,
    render_offers_report,
    simulate,
)
from offers.ledger import NotFound

MAX_EVENTS = 10_000


class FeedbackBatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Events about decisions; each is answered on its own."""

    events: Annotated[list[FeedbackEvent], msgspec.Meta(min_length=1, max_length=MAX_EVENTS)]


class FeedbackAnswer(msgspec.Struct, frozen=True, kw_only=True):
    accepted: int
    duplicate: int
    unknown_decision: int
    results: list[EventResult]


def answer(results: pl.DataFrame) -> FeedbackAnswer:
    """Counts per status and one result per event, in the order sent."""
    counts = dict(results.group_by("status").len().iter_rows())
    return FeedbackAnswer(
        accepted=counts.get("accepted", 0),
        duplicate=counts.get("duplicate", 0),
        unknown_decision=counts.get("unknown_decision", 0),
        results=msgspec.convert(results.to_dicts(), list[EventResult]),
    )


@post(
    "/v1/feedback",
    sync_to_thread=True,
    tags=["feedback"],
    operation_id="postFeedback",
    status_code=HTTP_200_OK,
    opt={"role": "desk"},
)
def post_feedback(state: State, data: JSONBody[FeedbackBatch]) -> FeedbackAnswer:
    """Record delivered, opened, redeemed, complaint, rating and rebooked/returned events.

    Keyed by `decision_id` ("{incident_id}:{step}:{customer_id}") or by the three parts.
    Sending an event id again is harmless (`duplicate`); an event about no recorded
    decision is `unknown_decision` and is not stored; the other events are still taken.
    """
    runtime: Runtime = state.runtime
    results = record_feedback(runtime.ledger, events_frame(data.events), datetime.now(UTC))
    if runtime.learning is not None:  # the next decision here learns from them at once
        runtime.learning.forget()
    return answer(results)


@post(
    "/v1/offer-tables/{name:str}/simulate",
    sync_to_thread=True,
    tags=["offers"],
    operation_id="simulateOfferTable",
    status_code=HTTP_200_OK,
    opt={"role": "marketing", "changes": False},
)
def simulate_table(
    state: State,
    name: FromPath[str],
    ref: VersionQuery = "draft",
    since: Annotated[str, QueryParameter(description="logged span to replay, e.g. 90d")] = "90d",
) -> Simulation:
    """Replay logged decisions under the draft: acceptance and cost per segment and in total
    (IPS, SNIPS, DR with 95% intervals); where the logs never tried the draft's perk for a
    segment the estimate is empty and `no_support` says so. Against the live table each
    group also has the change (`change_acceptance`, `change_cost`: paired DR differences
    with 95% intervals; `unchanged` where both give the same perks). Nothing is written."""
    runtime, store = offer_store(state)
    with domain_errors():
        span = parse_since(since)
        table = store.table(name, version_ref(ref, hint="N, vN, draft or live"))
        try:
            live: OfferTable | None = store.table(name, "live")
        except NotFound:
            live = None
        return simulate(
            runtime.ledger,
            table,
            datetime.now(UTC),
            span,
            runtime.book.select,
            traits=runtime.traits,
            live=live,
        )


@get(
    "/v1/reports/offers",
    sync_to_thread=True,
    tags=["reports"],
    operation_id="offersReport",
    opt={"role": "analyst"},
    responses={
        200: ResponseSpec(
            data_container=str,
            media_type=MediaType.HTML,
            description="One self-contained HTML page: acceptance, lift over holdout and "
            "complaint rates, each with its counts and 95% interval; charts as inline SVG.",
        )
    },
)
def offers_report(
    state: State,
    since: Annotated[str, QueryParameter(description="span to report, e.g. 90d")] = "90d",
) -> Response[str]:
    """The offers report as one static HTML page (charts inline, nothing from the network)."""
    runtime: Runtime = state.runtime
    with domain_errors():
        span = parse_since(since)
    html = render_offers_report(runtime.ledger, datetime.now(UTC), span)
    return Response(html, media_type="text/html")


handlers: list[HTTPRouteHandler] = [post_feedback, simulate_table, offers_report]
