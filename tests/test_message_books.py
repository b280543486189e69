"""Message books per incident kind: checks, and the lifecycle over HTTP into a real incident.

Marketing changes a sentence, previews it in every language and channel, publishes it with
a reason, and the next incident sends it; the ledger records which book version it used.
A rollback brings the old words back; a book with errors is refused whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from litestar.testing import TestClient

from api.app import create_app
from api.cli import cli
from api.runtime import Runtime
from offers.ledger import MessageStore, publish_shipped_books, wording_books
from offers.ledger.schema import decision_reasons, decisions
from offers.messages import (
    MessageBook,
    Template,
    book_findings,
    decode_book,
    dump_book,
    load_default_book,
    split_book,
)

SHIPPED = split_book(load_default_book())
FLIGHT = dump_book(SHIPPED["flight_delay"])
OLD_SMS = "{first_name}, we're sorry: flight {flight} is {delay_minutes} min late."
NEW_SMS = "{first_name}, our apologies: {flight} runs {delay_minutes} min late."
REWORDED = FLIGHT.replace(OLD_SMS, NEW_SMS)


def publish_elsewhere(runtime: Runtime) -> None:
    """The flight-delay book reworded (`REWORDED`), published by another worker through
    the database: this process hears of it only by reading."""
    MessageStore(runtime.engine).publish(
        "flight_delay",
        by="other-worker",
        reason="elsewhere",
        now=datetime.now(UTC),
        check=lambda name, book: [],
        body=REWORDED,
    )


def _without(book: MessageBook, drop: Callable[[Template], bool]) -> MessageBook:
    return msgspec.structs.replace(book, templates=[t for t in book.templates if not drop(t)])


def test_the_shipped_books_have_no_errors() -> None:
    assert set(SHIPPED) == {"flight_delay", "generic"}
    for name, book in SHIPPED.items():
        assert [f for f in book_findings(name, book) if f.severity == "error"] == [], name
    assert OLD_SMS in FLIGHT and REWORDED != FLIGHT


@pytest.mark.parametrize(
    ("body", "code", "where"),
    [
        (
            FLIGHT.replace("{delay_minutes} min late.", "{delay} min late.", 1),
            "placeholder",
            "text",
        ),
        (FLIGHT.replace('language = "zh-Hant"', 'language = "fr"', 1), "unknown-language", ""),
        (FLIGHT.replace('channel = "sms"', 'channel = "fax"', 1), "unknown-channel", ""),
        (FLIGHT.replace('incident = "flight_delay"', 'incident = "*"', 1), "other-incident", ""),
        (  # no English update at all: English customers would get no message
            dump_book(
                _without(
                    SHIPPED["flight_delay"], lambda t: t.kind == "update" and t.language == "en"
                )
            ),
            "missing-text",
            "flight_delay/update/en",
        ),
        (  # a long Chinese SMS: UCS-2 with the longest name takes more than two segments
            FLIGHT.replace("航班 {flight} 延误", "非常抱歉" * 20 + "航班 {flight} 延误", 1),
            "sms-too-long",
            "zh-Hans",
        ),
    ],
)
def test_a_book_with_errors_names_each_template(body: str, code: str, where: str) -> None:
    findings = book_findings("flight_delay", decode_book(body))
    errors = [f for f in findings if f.severity == "error"]
    assert [f.code for f in errors] == [code], findings
    assert where in f"{errors[0].template} {errors[0].language} {errors[0].field}"


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    publish_shipped_books(runtime.ledger, load_default_book(), datetime.now(UTC))
    runtime.reload_messages()
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def _incident(client: TestClient[Any], runtime: Runtime, incident_id: str) -> list[Any]:
    frame = runtime.book.frame
    english = frame.filter(frame["language"] == "en")["customer_id"].to_list()[:40]
    created = client.post(
        "/v1/incidents",
        json={
            "incident_id": incident_id,
            "kind": "flight_delay",
            "occurred_at": "2026-11-25T07:05:00+08:00",
            "facts": {"delay_minutes": 95, "flight": "MG777", "origin": "TPE"},
            "customers": english,
        },
    )
    assert created.status_code == 201, created.text
    sms = [d for d in created.json()["decisions"] if d["message"]["channel"] == "sms"]
    assert sms, "some English customers read SMS"
    return sms


def _books_used(runtime: Runtime, incident_id: str) -> set[str | None]:
    query = sa.select(decision_reasons.c.message_book).where(
        decision_reasons.c.incident_id == incident_id
    )
    with runtime.engine.connect() as conn:
        used = set(conn.execute(query).scalars())
    one = sa.select(decisions.c.customer_id).where(decisions.c.incident_id == incident_id)
    with runtime.engine.connect() as conn:
        customer = conn.execute(one.limit(1)).scalar_one()
    assert set(wording_books(runtime.ledger, incident_id, customer).values()) <= used
    return used


def test_edit_preview_publish_incident_rollback(client: TestClient[Any], runtime: Runtime) -> None:
    books = client.get("/v1/message-books").json()
    assert [(b["name"], b["latest"]["version"]) for b in books] == [
        ("flight_delay", 1),
        ("generic", 1),
    ]
    before = _incident(client, runtime, "MG777-before")
    assert all("we're sorry" in d["message"]["text"] for d in before)
    assert _books_used(runtime, "MG777-before") == {"flight_delay v1"}

    put = client.put(
        "/v1/message-books/flight_delay/draft",
        content=REWORDED,
        headers={"content-type": "application/toml"},
    )
    assert put.status_code == 200, put.text
    assert put.json()["draft"]["updated_by"] == "tests-admin"
    assert [f for f in put.json()["findings"] if f["severity"] == "error"] == []
    diff = client.get("/v1/message-books/flight_delay/diff", params={"from": "live"}).json()
    assert [(c["change"], c["template"], c["field"]) for c in diff["changes"]] == [
        ("changed", "flight_delay/apology/en/sms", "text")
    ]
    shown = client.post("/v1/message-books/flight_delay/preview", json={"perk": "meal-12"})
    assert shown.status_code == 200, shown.text
    previews = {(p["language"], p["channel"]): p for p in shown.json()["previews"]}
    assert len(previews) == 12
    assert previews[("en", "sms")]["text"].startswith("Mei, our apologies: MG123 runs 95 min")
    assert previews[("en", "sms")]["sms"]["segments"] <= 2
    assert "we are sorry" in previews[("en", "email")]["text"]  # untouched

    assert runtime.wording().versions == {"flight_delay": 1, "generic": 1}  # a draft is not live
    published = client.post(
        "/v1/message-books/flight_delay/publish", json={"reason": "warmer apology"}
    )
    assert published.status_code == 200, published.text
    info = published.json()["info"]
    assert (info["version"], info["published_by"], info["reason"]) == (
        2,
        "tests-admin",
        "warmer apology",
    )
    after = _incident(client, runtime, "MG777-after")
    assert all("our apologies" in d["message"]["text"] for d in after)
    assert _books_used(runtime, "MG777-after") == {"flight_delay v2"}

    back = client.post(
        "/v1/message-books/flight_delay/rollback", json={"version": 1, "reason": "too casual"}
    )
    assert back.status_code == 200 and back.json()["info"]["reason"] == "rollback to v1: too casual"
    again = _incident(client, runtime, "MG777-again")
    assert all("we're sorry" in d["message"]["text"] for d in again)
    history = client.get("/v1/message-books/flight_delay/versions").json()
    assert [(v["version"], v["published_by"]) for v in history] == [
        (1, "makegood bootstrap"),
        (2, "tests-admin"),
        (3, "tests-admin"),
    ]


def test_a_publish_by_another_process_is_served_within_a_second(
    client: TestClient[Any], runtime: Runtime
) -> None:
    """Another worker publishes through the database; this one checks at most once a second."""
    publish_elsewhere(runtime)
    assert runtime.wording().versions["flight_delay"] == 1  # checked less than a second ago
    runtime._messages_checked_at -= 1.5  # a second and a half later
    assert runtime.wording().versions["flight_delay"] == 2
    assert any(NEW_SMS in t.text for t in runtime.wording().templates)


def test_a_book_with_errors_is_refused_whole(client: TestClient[Any], runtime: Runtime) -> None:
    bad = REWORDED.replace("{delay_minutes} min late.", "{minutes} min late.")
    put = client.put("/v1/message-books/flight_delay/draft", content=bad)
    assert put.status_code == 200  # a draft may have errors
    checked = client.post("/v1/message-books/flight_delay/validate").json()
    assert not checked["ok"] and "unknown variable {minutes}" in str(checked["findings"])
    refused = client.post("/v1/message-books/flight_delay/publish", json={"reason": "oops"})
    assert refused.status_code == 422
    assert refused.json()["extra"]["findings"][0]["code"] == "placeholder"
    assert len(client.get("/v1/message-books/flight_delay/versions").json()) == 1
    unknown = client.put("/v1/message-books/meteor_strike/draft", content=FLIGHT)
    assert unknown.status_code == 404 and "flight_delay" in unknown.json()["detail"]
    broken = client.put("/v1/message-books/flight_delay/draft", content="[[templates]\n")
    assert broken.status_code == 422 and "message book flight_delay" in broken.json()["detail"]


def test_the_cli_exports_edits_checks_publishes_and_rolls_back(tmp_path: Path) -> None:
    """A marketer's week in the terminal, on a fresh data folder (no server needed)."""
    data = ["--data", str(tmp_path / "data")]
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, [*data, "messages", *args], terminal_width=200)
        assert result.exit_code == code, result.output
        return result.output

    assert "│ flight_delay │ v1 " in run("list")  # the shipped books, published on first use
    exported = tmp_path / "flight.toml"
    run("export", "flight_delay", "--out", str(exported))
    exported.write_text(
        exported.read_text(encoding="utf-8").replace(OLD_SMS, NEW_SMS), encoding="utf-8"
    )
    run("import", "flight_delay", str(exported), "--by", "mei")
    changes = run("diff", "flight_delay")
    assert changes.splitlines()[:3] == [
        "changed flight_delay/apology/en/sms (text)",
        f"  - {OLD_SMS}{{perk_line}}{{rights_line}}",
        f"  + {NEW_SMS}{{perk_line}}{{rights_line}}",
    ]
    shown = run("preview", "--book", "flight_delay", "--lang", "en", "--channel", "sms")
    assert "Mei, our apologies: MG123 runs 95 min late." in shown
    assert "0 errors" in run("check", "flight_delay")
    bad = tmp_path / "bad.toml"
    bad.write_text(exported.read_text(encoding="utf-8").replace("{flight}", "{flite}", 1))
    assert "unknown variable {flite}" in run("check", "flight_delay", "--file", str(bad), code=1)
    refused = run("publish", "flight_delay", str(bad), "--reason", "typo", code=1)
    assert "flight_delay not published: 1 errors" in refused
    run("publish", "flight_delay", "--reason", "warmer", "--by", "mei")
    assert "Mei, our apologies" in run("preview", "--lang", "en", "--channel", "sms")
    run("rollback", "flight_delay", "v1", "--reason", "too casual", "--by", "ana")
    assert "we're sorry" in run("preview", "--lang", "en", "--channel", "sms")
    history = run("history", "flight_delay")
    assert [line.split("│")[3].strip() for line in history.splitlines() if "│ v" in line] == [
        "makegood bootstrap",
        "mei",
        "ana",
    ]
    assert "rollback to v1: too casual" in history
    assert "Error: Invalid value: 'v0': use N, vN, draft or live" in run(
        "diff", "flight_delay", "--from", "v0", code=2
    )
