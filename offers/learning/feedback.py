"""Feedback about issued decisions: intake, exactly once per event id, into the ledger database.

A decision is named by its **decision id**, the text `"{incident_id}:{step}:{customer_id}"`
(see `decision_id`); a caller may instead give the three parts. Incident and customer ids may
themselves hold colons, so a decision id is resolved against the ledger, never guessed from
its text alone. A batch answers per event (accepted, duplicate, unknown decision): one bad
reference never fails the others. Everything runs over columns; the only per-event Python is
msgspec's decoding.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import polars as pl
import sqlalchemy as sa

from offers.incidents import AwareDatetime, IncidentId
from offers.ledger import Ledger, Tx, bulk_insert
from offers.ledger.schema import decisions, feedback_events

__all__ = [
    "EVENT_KINDS",
    "EVENT_SCHEMA",
    "EventResult",
    "FeedbackEvent",
    "decision_id",
    "decision_id_expr",
    "events_frame",
    "record_feedback",
    "with_decision_ids",
]

EventKind = Literal[
    "delivered", "opened", "redeemed", "complaint", "rating", "rebooked", "returned"
]
EVENT_KINDS: tuple[str, ...] = typing.get_args(EventKind)
Status = Literal["accepted", "duplicate", "unknown_decision"]

EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
CustomerId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
DecisionId = Annotated[
    str,
    msgspec.Meta(
        min_length=5,
        max_length=200,
        pattern=r"^.+:[0-9]+:.+(?!\n)$",
        description='"{incident_id}:{step}:{customer_id}"',
    ),
]


class FeedbackEvent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One thing that happened after a decision, keyed by `decision_id` or by
    (`incident_id`, `customer_id`, `step`). `rating` (1-5) goes with kind `rating`,
    `within_days` with `rebooked` and `returned` ("came back within N days")."""

    event_id: EventId
    kind: EventKind
    occurred_at: AwareDatetime
    decision_id: DecisionId | None = None
    incident_id: IncidentId | None = None
    customer_id: CustomerId | None = None
    step: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None
    rating: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None
    within_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] | None = None

    def __post_init__(self) -> None:
        parts = (self.incident_id, self.customer_id, self.step)
        if self.decision_id is None and any(p is None for p in parts):
            raise ValueError("give decision_id, or incident_id, customer_id and step")
        if self.decision_id is not None and any(p is not None for p in parts):
            raise ValueError("give decision_id or (incident_id, customer_id, step), not both")
        if (self.kind == "rating") != (self.rating is not None):
            raise ValueError("rating: a 1-5 value goes with kind rating, and only with it")
        if (self.kind in ("rebooked", "returned")) != (self.within_days is not None):
            raise ValueError("within_days: goes with kinds rebooked and returned, only them")


class EventResult(msgspec.Struct, frozen=True, kw_only=True):
    """What became of one event: stored now, stored before, or no such decision."""

    event_id: str
    status: Status
    decision_id: str | None


EVENT_SCHEMA: dict[str, Any] = {
    "event_id": pl.String,
    "kind": pl.String,
    "occurred_at": pl.Datetime("us", "UTC"),
    "decision_id": pl.String,
    "incident_id": pl.String,
    "customer_id": pl.String,
    "step": pl.Int32,
    "rating": pl.Int32,
    "within_days": pl.Int32,
}
_KEY = ("incident_id", "step", "customer_id")
_KEY_SCHEMA: dict[str, Any] = {"incident_id": pl.String, "step": pl.Int32, "customer_id": pl.String}


def decision_id(incident_id: str, step: int, customer_id: str) -> str:
    """The id feedback uses for one decision: `"{incident_id}:{step}:{customer_id}"`."""
    return f"{incident_id}:{step}:{customer_id}"


def decision_id_expr() -> pl.Expr:
    """`decision_id` as a column expression over `incident_id`, `step`, `customer_id`."""
    return pl.format("{}:{}:{}", "incident_id", "step", "customer_id").alias("decision_id")


def with_decision_ids(frame: pl.DataFrame) -> pl.DataFrame:
    """Decisions with their `decision_id` column added (for responses and exports)."""
    return frame.with_columns(decision_id_expr())


def events_frame(events: Sequence[FeedbackEvent]) -> pl.DataFrame:
    """Decoded events as a frame (times in UTC), in the order given."""
    rows = msgspec.to_builtins(events, builtin_types=(datetime,))
    if not rows:
        return pl.DataFrame(schema=EVENT_SCHEMA)
    return pl.DataFrame(rows, schema_overrides=EVENT_SCHEMA).select(
        pl.col(c).cast(t) for c, t in EVENT_SCHEMA.items()
    )


def _candidates(events: pl.DataFrame) -> pl.DataFrame:
    """(row, incident_id, step, customer_id) for every way to read each event's key.

    A decision id splits at any `:<digits>:`; one column expression per split position
    (bounded by the most colons in the batch), never a loop over events.
    """
    indexed = events.with_row_index("_row")
    direct = indexed.filter(pl.col("decision_id").is_null()).select("_row", *_KEY)
    named = indexed.filter(pl.col("decision_id").is_not_null()).select(
        "_row", parts=pl.col("decision_id").str.split(":")
    )
    frames = [direct.cast(_KEY_SCHEMA)]  # type: ignore[arg-type]
    most = int(named["parts"].list.len().max() or 0) if named.height else 0  # type: ignore[arg-type]
    parts = pl.col("parts")
    for k in range(1, most - 1):
        frames.append(
            named.filter(parts.list.len() > k + 1)
            .select(
                "_row",
                incident_id=parts.list.slice(0, k).list.join(":"),
                step=parts.list.get(k),
                customer_id=parts.list.slice(k + 1).list.join(":"),
            )
            .filter(pl.col("step").str.contains(r"^[0-9]{1,9}$"))
            .with_columns(pl.col("step").cast(pl.Int32))
        )
    return pl.concat(frames)


def _existing(tx: Tx, keys: pl.DataFrame, chunk: int = 5000) -> pl.DataFrame:
    """Which of `keys` are decisions in the ledger (queried by incident and customer)."""
    found = []
    incidents_ = keys["incident_id"].unique().to_list()
    customers = keys["customer_id"].unique().sort().to_list()
    d = decisions.c
    for i in range(0, len(customers), chunk):
        query = sa.select(d.incident_id, d.step, d.customer_id).where(
            d.incident_id.in_(incidents_), d.customer_id.in_(customers[i : i + chunk])
        )
        found.append(pl.DataFrame(tx.conn.execute(query).all(), schema=_KEY_SCHEMA, orient="row"))
    stored = pl.concat(found) if found else pl.DataFrame(schema=_KEY_SCHEMA)
    return keys.join(stored, on=list(_KEY), how="semi")


def _known_events(tx: Tx, ids: list[str], chunk: int = 5000) -> pl.DataFrame:
    c = feedback_events.c
    rows = [
        r
        for i in range(0, len(ids), chunk)
        for r in tx.conn.execute(sa.select(c.event_id).where(c.event_id.in_(ids[i : i + chunk])))
    ]
    return pl.DataFrame(rows, schema={"event_id": pl.String}, orient="row")


def _lock(tx: Tx) -> None:
    """Serialize feedback writers so "accepted" and "duplicate" are exact (SQLite: held)."""
    if tx.conn.dialect.name == "postgresql":
        tx.conn.execute(sa.text("SELECT pg_advisory_xact_lock(726001)"))


def record_feedback(ledger: Ledger, events: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Store new events; answer (event_id, status, decision_id) per event, in input order.

    An event id seen before (in the ledger or earlier in the batch) is a duplicate and
    changes nothing; an event naming no recorded decision is `unknown_decision` and is not
    stored.
    """
    events = events.select(pl.col(c).cast(t) for c, t in EVENT_SCHEMA.items())
    with ledger.writing() as tx:
        _lock(tx)
        candidates = _candidates(events)
        resolved = (
            _existing(tx, candidates.select(_KEY).unique())
            .join(candidates, on=list(_KEY))
            .sort("_row", "step")
            .unique("_row", keep="first")
        )
        known = _known_events(tx, events["event_id"].unique().to_list())
        answered = (
            events.with_columns(_given=pl.coalesce("decision_id", pl.format("{}:{}:{}", *_KEY)))
            .drop(_KEY)
            .with_row_index("_row")
            .join(resolved, on="_row", how="left", maintain_order="left")
            .with_columns(
                status=pl.when(pl.col("event_id").is_in(known["event_id"].implode()))
                .then(pl.lit("duplicate"))
                .when(~pl.col("event_id").is_first_distinct())
                .then(pl.lit("duplicate"))
                .when(pl.col("incident_id").is_null())
                .then(pl.lit("unknown_decision"))
                .otherwise(pl.lit("accepted")),
                decision_id=pl.when(pl.col("incident_id").is_not_null())
                .then(decision_id_expr())
                .otherwise(pl.col("_given")),
            )
        )
        fresh = answered.filter(pl.col("status") == "accepted").select(
            "event_id",
            *_KEY,
            "kind",
            "rating",
            "within_days",
            "occurred_at",
            received_at=pl.lit(now, dtype=pl.Datetime("us", "UTC")),
        )
        bulk_insert(tx.conn, feedback_events, fresh)
    return answered.select("event_id", "status", "decision_id")
