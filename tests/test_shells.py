"""Decision texts kept as a shell per wording and a name per row read back exactly."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import polars as pl
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime
from offers.flow import apply_update
from offers.incidents.kinds import FlightFacts, Incident
from offers.ledger.erasure import PLACEHOLDER, erase_customer, pseudonym
from offers.ledger.schema import decision_reasons, decisions
from offers.record import CODE_MARK, DECISION_COLUMNS, NAME_MARK
from segmentation.book import ProfileBook

INCIDENT = "MG7-2026-11-24"
#: Names with the marks in them: spliced in last, they must come back as they are.
ODD_NAMES = [f"A{CODE_MARK}B", NAME_MARK, f"Zoë {NAME_MARK}{CODE_MARK}"]
#: A fact with the marks in it: the engine drops them from every literal of a shell.
ODD_FLIGHT = f"MG{NAME_MARK}7{CODE_MARK}"


def incident(delay: int = 60, flight: str = ODD_FLIGHT) -> Incident:
    return Incident(
        incident_id=INCIDENT,
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 24, 7, 0, tzinfo=UTC),
        facts=FlightFacts(delay_minutes=delay, flight=flight, origin="TPE"),
    )


@pytest.fixture
def odd(runtime: Runtime) -> list[str]:
    """1,200 customers (PostgreSQL gets more than 1,000 rows as a COPY), the first three
    with mark characters in their names and the fifth with no channel allowed (no
    message); templates with mark characters in their text."""
    ids = runtime.book.frame["customer_id"].sample(1_200, seed=5).to_list()
    names = dict(zip(ids, ODD_NAMES, strict=False))
    profiles = runtime.book.frame.drop("segment", "segment_description", "_id_hash")
    allowed = pl.col("allowed_channels")
    runtime.book = ProfileBook(
        profiles.with_columns(
            first_name=pl.col("customer_id").replace_strict(
                names, default=pl.col("first_name"), return_dtype=pl.String
            ),
            allowed_channels=pl.when(pl.col("customer_id") == ids[4])
            .then(allowed.list.head(0))
            .otherwise(allowed),
        ),
        runtime.model,
    )
    runtime.messages = msgspec.structs.replace(
        runtime.messages,
        templates=[
            msgspec.structs.replace(t, text=f"{NAME_MARK}{t.text}{CODE_MARK}")
            for t in runtime.messages.templates
        ],
    )
    return ids


def texts(frame: pl.DataFrame) -> dict[str, str | None]:
    return dict(zip(frame["customer_id"], frame["text"], strict=True))


def test_texts_read_back_as_the_engine_wrote_them(runtime: Runtime, odd: list[str]) -> None:
    dry = apply_update(runtime.parts(), incident(), odd, datetime.now(UTC), dry_run=True)
    engine = apply_update(runtime.parts(), incident(), odd, datetime.now(UTC)).decisions
    # what `makegood incidents apply` writes as Parquet: the decision, not what is stored
    assert dry.decisions.columns == engine.columns == [*DECISION_COLUMNS, "followups"]
    mine = texts(engine)
    assert sum(t is not None for t in mine.values()) > 1_000
    for customer_id, name in zip(odd, ODD_NAMES, strict=False):
        text = mine[customer_id]
        assert text is not None and name in text
        assert NAME_MARK not in text.replace(name, "") and CODE_MARK not in text.replace(name, "")
    assert all("MG7" in t for t in mine.values() if t is not None)
    assert texts(runtime.ledger.decisions(INCIDENT)) == mine
    assert texts(runtime.ledger.decisions(INCIDENT, customer_id=odd[0])) == {odd[0]: mine[odd[0]]}

    with runtime.engine.connect() as conn:
        d = decisions.c
        rows = conn.execute(sa.select(d.customer_id, d.text, d.first_name)).all()
        shells = conn.execute(sa.select(decision_reasons.c.text_shell)).scalars().all()
    assert all(text is None for _, text, _ in rows)
    named = {c: n for c, _, n in rows if n is not None}
    assert {odd[i]: ODD_NAMES[i] for i in range(3)}.items() <= named.items()
    profiles = runtime.book.select(list(named))
    assert named == dict(zip(profiles["customer_id"], profiles["first_name"], strict=True))
    assert mine[odd[4]] is None and odd[4] not in named  # no text, no name
    assert 1 < len(shells) < len(odd) / 5
    assert all(s is None or NAME_MARK in s for s in shells)


def test_http_answers_carry_the_texts_and_never_the_name_column(
    runtime: Runtime, odd: list[str], admin_headers: dict[str, str]
) -> None:
    body = {
        "incident_id": INCIDENT,
        "kind": "flight_delay",
        "occurred_at": "2026-11-24T07:00:00Z",
        "facts": {"delay_minutes": 60, "flight": ODD_FLIGHT, "origin": "TPE"},
        "customers": odd,
    }
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        created = client.post("/v1/incidents", json=body)
        assert created.status_code == 201, created.text
        url = f"/v1/incidents/{INCIDENT}/decisions"
        every = {"limit": 5000}
        page = client.get(url, params=every)
        lines = client.get(url, params=every, headers={"accept": "application/x-ndjson"})
        parquet = client.get(
            url, params=every, headers={"accept": "application/vnd.apache.parquet"}
        )
        replay = client.post("/v1/incidents", json=body)

    def messages(decided: list[dict[str, Any]]) -> dict[str, str | None]:
        return {d["customer_id"]: d["message"]["text"] if d["message"] else None for d in decided}

    answered = messages(created.json()["decisions"])
    assert answered[odd[0]] is not None and ODD_NAMES[0] in answered[odd[0]]
    assert messages(page.json()["decisions"]) == answered
    assert messages([json.loads(line) for line in lines.text.splitlines()]) == answered
    assert messages(replay.json()["decisions"]) == answered
    frame = pl.read_parquet(io.BytesIO(parquet.content))
    assert texts(frame) == answered
    assert not {"first_name", "text_shell", "reason_id"} & set(frame.columns)
    for response in (created, page, lines, replay):
        assert '"first_name"' not in response.text and '"text_shell"' not in response.text


def test_erasure_puts_the_placeholder_where_the_name_was(runtime: Runtime, odd: list[str]) -> None:
    parts = runtime.parts()
    apply_update(parts, incident(60), odd, datetime.now(UTC))
    engine = apply_update(parts, incident(100), odd, datetime.now(UTC))
    who, name = odd[2], ODD_NAMES[2]
    before = runtime.ledger.decisions(INCIDENT, customer_id=who)
    assert before.height == 2 and all(name in t for t in before["text"])
    assert texts(engine.decisions)[who] == before["text"][1]

    erased = erase_customer(runtime.engine, who, [name])
    assert erased.texts == 2 and erased.rows["decisions"] == 2
    after = runtime.ledger.decisions(INCIDENT, customer_id=pseudonym(who))
    assert after["text"].to_list() == [t.replace(name, PLACEHOLDER) for t in before["text"]]
    assert [r["first_name"] for r in _raw(runtime, pseudonym(who))] == [PLACEHOLDER] * 2
    # a customer without a message: no text, no name kept, nothing counted
    assert texts(engine.decisions)[odd[4]] is None
    assert [r["first_name"] for r in _raw(runtime, odd[4])] == [None] * 2
    assert erase_customer(runtime.engine, odd[4], ["x"]).texts == 0


def test_rows_with_their_own_text_keep_it(runtime: Runtime, odd: list[str]) -> None:
    """Rows written before migration 0013 keep their text, also where their wording has a
    shell now, and erasure scrubs them as it always did."""
    apply_update(runtime.parts(), incident(), odd, datetime.now(UTC))
    old, plain = odd[0], odd[3]
    name = runtime.book.one(plain)["first_name"]  # type: ignore[index]
    with runtime.engine.begin() as conn:
        for customer_id, text in ((old, "written the old way"), (plain, f"Dear {name}, sorry")):
            conn.execute(
                decisions.update()
                .where(decisions.c.customer_id == customer_id)
                .values(text=text, first_name=None)
            )
    assert texts(runtime.ledger.decisions(INCIDENT, customer_id=old)) == {
        old: "written the old way"
    }
    erased = erase_customer(runtime.engine, plain, [name])
    assert erased.texts == 1
    assert runtime.ledger.decisions(INCIDENT, customer_id=pseudonym(plain))["text"].to_list() == [
        f"Dear {PLACEHOLDER}, sorry"
    ]


def _raw(runtime: Runtime, customer_id: str) -> list[dict[str, Any]]:
    with runtime.engine.connect() as conn:
        query = sa.select(decisions).where(decisions.c.customer_id == customer_id)
        return [dict(r._mapping) for r in conn.execute(query.order_by(decisions.c.step))]
