"""The follow-up feed hands every follow-up out once, however many fall due, on both databases."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime
from offers.flow import apply_update
from offers.incidents import FlightFacts, Incident

DECIDED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def decide_everyone(
    runtime: Runtime, incident_id: str, at: datetime, part: slice = slice(None)
) -> None:
    """Apologies to the population (or `part` of it) at `at`: a check-in two days later and
    a feedback request a week later for everyone who consented, many due at one instant."""
    incident = Incident(
        incident_id=incident_id,
        kind="flight_delay",
        occurred_at=at,
        facts=FlightFacts(delay_minutes=60, flight="MG7"),
    )
    customers = runtime.book.frame["customer_id"].to_list()[part]
    apply_update(runtime.parts(), incident, customers, at)


def stored(runtime: Runtime, before: datetime) -> list[tuple[str, str]]:
    """(decision_id, kind) of every follow-up the ledger holds due before `before`."""
    query = sa.text(
        "SELECT incident_id, step, customer_id, followup_kind, followup_at, then_kind, then_at"
        " FROM decisions WHERE followup_at IS NOT NULL"
    )
    with runtime.engine.connect() as conn:
        rows = conn.execute(query).all()
    due = []
    for incident, step, customer, kind, at, then_kind, then_at in rows:
        for k, t in ((kind, at), (then_kind, then_at)):
            if k is not None and _aware(t) < before:
                due.append((f"{incident}:{step}:{customer}", k))
    return due


def _aware(at: datetime | str) -> datetime:
    parsed = datetime.fromisoformat(at) if isinstance(at, str) else at
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_feed(
    client: TestClient[Any], due_before: datetime, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None, int]:
    """Every page of the feed from `cursor` on: the follow-ups, the last cursor, the pages."""
    listed: list[dict[str, Any]] = []
    pages = 0
    while True:
        params: dict[str, Any] = {"due_before": due_before.isoformat(), "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        answer = client.get("/v1/followups", params=params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        pages += 1
        listed += page["followups"]
        cursor = page["next_cursor"]
        if not page["more"]:
            return listed, cursor, pages


def test_every_followup_due_is_listed_once_across_pages_and_polls(
    client: TestClient[Any], runtime: Runtime
) -> None:
    """Thousands due, pages of 700: the first poll (check-ins due) and the next one from its
    cursor (feedback requests due since) list each follow-up exactly once, and a poll after
    that lists nothing again."""
    decide_everyone(runtime, "MG7-FEED", DECIDED)
    now = datetime.now(UTC)
    everything = stored(runtime, now)
    assert len(everything) > 3 * 700  # more than a few pages
    first_poll = DECIDED + timedelta(days=4)  # check-ins due, feedback requests not yet
    first, cursor, pages = read_feed(client, first_poll, None, 700)
    assert pages > 1 and {f["kind"] for f in first} == {"check-in"}
    then, cursor, _ = read_feed(client, now, cursor, 700)
    assert {f["kind"] for f in then} == {"feedback"}
    listed = [(f["decision_id"], f["kind"]) for f in first + then]
    assert len(listed) == len(set(listed))  # none twice
    assert sorted(listed) == sorted(everything)  # none left out
    due = [datetime.fromisoformat(f["due_at"]) for f in first + then]
    assert due == sorted(due)  # in due order
    again = client.get("/v1/followups", params={"due_before": now.isoformat(), "cursor": cursor})
    assert again.json() == {"followups": [], "next_cursor": cursor, "more": False}


def test_followups_falling_due_later_come_after_the_cursor(
    client: TestClient[Any], runtime: Runtime
) -> None:
    """A sender that polled to the end before another incident's follow-ups fell due gets
    those, and only those, from its cursor."""
    polled = DECIDED + timedelta(days=9)
    decide_everyone(runtime, "MG7-EARLY", DECIDED, slice(0, 1500))
    early, cursor, _ = read_feed(client, polled, None, 1000)
    assert {f["kind"] for f in early} == {"check-in", "feedback"}
    decide_everyone(runtime, "MG7-LATER", polled + timedelta(hours=1), slice(1500, None))
    late = [f for f in stored(runtime, datetime.now(UTC)) if f[0].startswith("MG7-LATER")]
    rest, _, _ = read_feed(client, datetime.now(UTC), cursor, 1000)
    assert late and sorted((f["decision_id"], f["kind"]) for f in rest) == sorted(late)


def test_only_what_is_due_is_listed(client: TestClient[Any], runtime: Runtime) -> None:
    """Follow-ups scheduled for later are not listed, even when asked for ones due in 2100:
    a cursor moved past them would skip any scheduled before them later."""
    decide_everyone(runtime, "MG7-NOW", datetime.now(UTC))
    page = client.get("/v1/followups", params={"due_before": "2100-01-01T00:00:00Z"}).json()
    assert page == {"followups": [], "next_cursor": None, "more": False}


@pytest.mark.parametrize(
    "cursor",
    [
        "nonsense",
        "",
        base64.urlsafe_b64encode(b'["2026-11-27T09:00:00Z","i",99999999999999999999,"c",0]'),
        base64.urlsafe_b64encode(b'["2026-11-27T09:00:00","i",1,"c",0]'),
        base64.urlsafe_b64encode(json.dumps(["2026-11-27T09:00:00Z", "i", 1, "c", 7]).encode()),
    ],
)
def test_a_cursor_the_feed_did_not_give_out_is_a_400(
    client: TestClient[Any], cursor: str | bytes
) -> None:
    text = cursor.decode() if isinstance(cursor, bytes) else cursor
    answer = client.get(
        "/v1/followups", params={"due_before": "2026-12-01T00:00:00Z", "cursor": text}
    )
    assert answer.status_code == 400 and "cursor" in answer.json()["detail"]


def test_due_before_in_any_offset_is_the_same_instant(
    client: TestClient[Any], runtime: Runtime
) -> None:
    """`due_before` at +14:00 lists what the same instant in UTC lists (SQLite once compared
    the clock reading, 14 hours off)."""
    decide_everyone(runtime, "MG7-ZONE", DECIDED, slice(0, 300))
    bound = DECIDED + timedelta(days=2, hours=-1)

    def listed(at: datetime) -> list[str]:
        page = client.get("/v1/followups", params={"due_before": at.isoformat()}).json()
        return [f["decision_id"] + f["kind"] for f in page["followups"]]

    in_utc = listed(bound)
    assert listed(bound + timedelta(hours=14)) != in_utc  # the test can tell them apart
    assert listed(bound.astimezone(timezone(timedelta(hours=14)))) == in_utc
