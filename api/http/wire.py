"""Wire types of the HTTP API (msgspec), and their mapping to and from the domain."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
import polars as pl

from api.http.wire_customers import MAX_SYNC_CUSTOMERS, CustomerId, Customers, CustomerSelector
from offers.incidents import (
    AwareDatetime,
    CancellationFacts,
    FactsError,
    FlightFacts,
    Incident,
    IncidentId,
    ServiceFacts,
    facts_type,
)
from offers.learning import decision_id_expr
from offers.record import ENTITLEMENT_DTYPE

Money = Annotated[float, msgspec.Meta(ge=0, le=1e12, description="total perk cost allowed")]


class _Create(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"
):
    """A new incident (or the same one again: repeating a create is harmless)."""

    incident_id: IncidentId
    occurred_at: AwareDatetime
    customers: Customers
    budget: Money | None = None
    dry_run: bool = False

    @property
    def kind(self) -> str:
        return str(type(self).__struct_config__.tag)

    def incident(self) -> Incident:
        facts: FlightFacts | ServiceFacts = self.facts  # type: ignore[attr-defined]
        return Incident(
            incident_id=self.incident_id,
            kind=self.kind,
            occurred_at=self.occurred_at,
            facts=facts,
        )


class FlightDelay(_Create, frozen=True, tag="flight_delay"):
    """A flight is late; `facts.delay_minutes` grows with each update."""

    facts: FlightFacts


class Cancellation(_Create, frozen=True, tag="cancellation"):
    """A flight is cancelled; `facts.delay_minutes` is how late the re-booking gets there,
    `facts.notice_days` how many days ahead the customer was told."""

    facts: CancellationFacts


class MissedConnection(_Create, frozen=True, tag="missed_connection"):
    """A late first leg broke a connection; delay at the final destination."""

    facts: FlightFacts


class LostBaggage(_Create, frozen=True, tag="lost_baggage"):
    """A bag did not arrive; `facts.delay_minutes` is how long it has been missing."""

    facts: ServiceFacts


class ServiceOutage(_Create, frozen=True, tag="service_outage"):
    """A service (check-in, app, Wi-Fi…) is down; minutes of outage."""

    facts: ServiceFacts


class OrderLate(_Create, frozen=True, tag="order_late"):
    """An order is late; minutes past the promised time (a day is 1440)."""

    facts: ServiceFacts


IncidentCreate = (
    FlightDelay | Cancellation | MissedConnection | LostBaggage | ServiceOutage | OrderLate
)


class IncidentPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """New facts for an incident (the delay grew); optionally more affected customers.

    `kind` turns a flight incident into another flight kind (a delay becomes a
    cancellation). `facts` are checked against the incident's kind.
    """

    facts: dict[str, Any]
    kind: Literal["flight_delay", "cancellation", "missed_connection"] | None = None
    customers: (
        Annotated[list[CustomerId], msgspec.Meta(max_length=MAX_SYNC_CUSTOMERS)] | CustomerSelector
    ) = []
    budget: Money | None = None
    dry_run: bool = False


def patch_facts(kind: str, raw: dict[str, Any]) -> FlightFacts | ServiceFacts:
    """The PATCH's facts as the incident's kind expects them; errors name the field."""
    try:
        return msgspec.convert(raw, facts_type(kind))
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        field = "facts" + (where.rstrip("`") if where else "")
        raise FactsError(f"{field}: {message}") from exc


class SegmentOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str | None
    description: str | None


class MessageOut(msgspec.Struct, frozen=True, kw_only=True):
    channel: str
    language: str
    text: str
    kind: Literal["apology", "update"]


class PerkOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str | None
    value: float
    cost: float
    currency: str
    code: str
    valid_until: date
    charged: Annotated[float, msgspec.Meta(description="cost counted against the budget")]
    replaces: str | None


class EntitlementOut(msgspec.Struct, frozen=True, kw_only=True):
    regime: str
    kind: str
    amount: float | None
    currency: str | None
    basis: str


class FollowupOut(msgspec.Struct, frozen=True, kw_only=True):
    due_at: datetime
    kind: str


class DecisionOut(msgspec.Struct, frozen=True, kw_only=True):
    decision_id: Annotated[str, msgspec.Meta(description="incident:step:customer, for feedback")]
    customer_id: str
    incident_id: str
    step: int
    segment: SegmentOut
    message: MessageOut | None
    perk: PerkOut | None
    entitlements: list[EntitlementOut]
    followups: list[FollowupOut]
    reasons: list[str]
    propensity: float
    holdout: bool
    needs_human: bool


class IncidentResult(msgspec.Struct, frozen=True, kw_only=True):
    incident_id: str
    step: int
    delay_minutes: int
    issued: Annotated[int, msgspec.Meta(description="decisions newly recorded by this call")]
    cost: Annotated[float, msgspec.Meta(description="charged by this step's decisions")]
    budget: float | None
    spent: Annotated[float, msgspec.Meta(description="charged by the incident so far")]
    dry_run: bool
    decisions: list[DecisionOut]


class DecisionPage(msgspec.Struct, frozen=True, kw_only=True):
    incident_id: str
    total: int
    offset: int
    limit: int
    next_offset: int | None
    decisions: list[DecisionOut]


def decision_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Decision frame -> nested dicts of DESIGN.md's decision shape, built as columns."""
    return _shaped(frame).to_dicts()


def _shaped(frame: pl.DataFrame, times: Callable[[pl.Expr], pl.Expr] = lambda e: e) -> pl.DataFrame:
    """DESIGN.md's decision shape as nested columns; `times` turns the follow-ups' times
    into what the answer carries."""
    has_perk = pl.col("perk_id").is_not_null()
    has_message = pl.col("text").is_not_null()
    followup = pl.element().struct
    return frame.select(
        decision_id_expr(),
        "customer_id",
        "incident_id",
        "step",
        pl.struct(name="segment", description="segment_description").alias("segment"),
        pl.when(has_message)
        .then(pl.struct("channel", "language", "text", kind="message_kind"))
        .alias("message"),
        pl.when(has_perk)
        .then(
            pl.struct(
                id="perk_id",
                title="perk_title",
                value="perk_value",
                cost="perk_cost",
                currency="currency",
                code="perk_code",
                valid_until="valid_until",
                charged="charged_cost",
                replaces="replaces",
            )
        )
        .alias("perk"),
        pl.col("entitlements").str.json_decode(ENTITLEMENT_DTYPE).fill_null([]),
        pl.col("followups").list.eval(
            pl.struct(times(followup.field("due_at")).alias("due_at"), followup.field("kind"))
        ),
        pl.col("reasons").str.json_decode(pl.List(pl.String)),
        "propensity",
        pl.col("holdout").fill_null(False),
        pl.col("needs_human").fill_null(False),
    )


def _rfc3339(at: pl.Expr) -> pl.Expr:
    """A UTC time as msgspec writes it: "2026-11-25T07:05:00Z", microseconds only if any."""
    whole = at.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        pl.when(at.dt.microsecond() == 0)
        .then(whole)
        .otherwise(at.dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
    )


def decisions_json(frame: pl.DataFrame) -> Any:
    """`decisions_out(frame)` already encoded, written by polars: the same JSON msgspec
    would write, without a Python object per field (a 300-passenger answer, a page).

    A `msgspec.Raw`, which msgspec writes as is: it stands in for `list[DecisionOut]`
    in `IncidentResult` and `DecisionPage`, whose types still describe the answer."""
    return msgspec.Raw(_shaped(frame, _rfc3339).write_json().encode())


def decisions_ndjson(frame: pl.DataFrame) -> bytes:
    """`decisions_json`, one decision per line."""
    return _shaped(frame, _rfc3339).write_ndjson().encode()


def decisions_out(frame: pl.DataFrame) -> list[DecisionOut]:
    return msgspec.convert(decision_rows(frame), list[DecisionOut])


def decision_out(row: dict[str, Any]) -> DecisionOut:
    """One flat decision row (a ledger row as a dict) -> the decision shape, as
    `decision_rows` builds it for whole frames; for a single answer, without a frame."""
    message = None
    if row["text"] is not None:
        message = {
            "channel": row["channel"],
            "language": row["language"],
            "text": row["text"],
            "kind": row["message_kind"],
        }
    perk = None
    if row["perk_id"] is not None:
        perk = {
            "id": row["perk_id"],
            "title": row["perk_title"],
            "value": row["perk_value"],
            "cost": row["perk_cost"],
            "currency": row["currency"],
            "code": row["perk_code"],
            "valid_until": row["valid_until"],
            "charged": row["charged_cost"],
            "replaces": row["replaces"],
        }
    shaped = {
        "decision_id": f"{row['incident_id']}:{row['step']}:{row['customer_id']}",
        "customer_id": row["customer_id"],
        "incident_id": row["incident_id"],
        "step": row["step"],
        "segment": {"name": row["segment"], "description": row["segment_description"]},
        "message": message,
        "perk": perk,
        "entitlements": msgspec.json.decode(row["entitlements"] or "[]"),
        "followups": row["followups"],
        "reasons": msgspec.json.decode(row["reasons"] or "[]"),
        "propensity": row["propensity"],
        "holdout": bool(row["holdout"]),
        "needs_human": bool(row["needs_human"]),
    }
    return msgspec.convert(shaped, DecisionOut)


class PreviewRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One customer and an incident's facts; the incident may exist (history counts) or not."""

    incident_id: IncidentId = "preview"
    kind: Literal["flight_delay"]
    occurred_at: AwareDatetime
    facts: FlightFacts
    customer_id: CustomerId
    budget: Money | None = None

    def incident(self) -> Incident:
        return Incident(
            incident_id=self.incident_id,
            kind=self.kind,
            occurred_at=self.occurred_at,
            facts=self.facts,
        )


class StepSummary(msgspec.Struct, frozen=True, kw_only=True):
    step: int
    decisions: int
    apologies: int
    perks: int
    holdout: int
    needs_human: int
    cost: float


class IncidentStatus(msgspec.Struct, frozen=True, kw_only=True):
    incident_id: str
    kind: str
    occurred_at: datetime
    facts: dict[str, Any]
    step: int
    budget: float | None
    spent: float
    decisions: int
    steps: list[StepSummary]


class FollowupDue(msgspec.Struct, frozen=True, kw_only=True):
    decision_id: Annotated[str, msgspec.Meta(description="incident:step:customer, for feedback")]
    incident_id: str
    customer_id: str
    kind: str
    due_at: datetime
    channel: str | None
    language: str | None


class FollowupPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of the follow-up feed: send these, keep `next_cursor` for the next call."""

    followups: list[FollowupDue]
    next_cursor: Annotated[
        str | None,
        msgspec.Meta(
            description="pass as `cursor` next time: the feed goes on after this page; "
            "null only while nothing has been listed"
        ),
    ]
    more: Annotated[bool, msgspec.Meta(description="more are due now: call again at once")]


class JobAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """A large incident is being decided in the background: poll `status_url`."""

    job_id: str
    incident_id: str
    status_url: str


class JobStatus(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    subject: str
    status: Literal["queued", "running", "done", "failed"]
    progress: Annotated[float, msgspec.Meta(ge=0, le=1)]
    message: str
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
