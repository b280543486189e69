"""The message-book pages: edit, check and preview, save, publish with a reason, roll back.

The page calls the same store, checks and previews as the JSON API; a text with an error is
shown beside the field with a 4xx and nothing is saved or published.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime
from offers.ledger import publish_shipped_books
from offers.messages import load_default_book
from tests.test_admin_pages import csrf, make_key, sign_in

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

OLD = "{first_name}, we're sorry: flight {flight} is {delay_minutes} min late."
NEW = "{first_name}, our apologies: {flight} runs {delay_minutes} min late."


@pytest.fixture
def marketer(runtime: Runtime) -> Iterator[TestClient[Any]]:
    publish_shipped_books(runtime.ledger, load_default_book(), datetime.now(UTC))
    runtime.reload_messages()
    with TestClient(app=create_app(runtime)) as client:
        sign_in(client, make_key(runtime, "marketing"))
        yield client


def _text(page: str) -> str:
    return html.unescape(page.split('name="body"', 1)[1].split(">", 1)[1].split("</textarea>")[0])


def test_edit_preview_publish_and_roll_back_a_book(
    marketer: TestClient[Any], runtime: Runtime
) -> None:
    listing = marketer.get("/admin/messages").text
    assert 'href="/admin/messages/books/flight_delay"' in listing
    page = marketer.get("/admin/messages/books/flight_delay").text
    body = _text(page)
    assert OLD in body and "No findings" in page

    typo = body.replace(OLD, NEW.replace("{flight}", "{flite}"))
    bad = marketer.post(
        "/admin/messages/books/flight_delay",
        data={"_csrf": csrf(page), "body": typo, "action": "save"},
    )
    assert bad.status_code == 200  # a draft may hold errors; they stop the publish
    findings = bad.text.split('id="findings"')[1].split("</ul>")[0]
    assert "unknown variable {flite}" in html.unescape(findings)

    checked = marketer.post(
        "/admin/messages/books/flight_delay",
        data={"_csrf": csrf(page), "body": body.replace(OLD, NEW), "action": "check"},
    )
    assert checked.status_code == 200
    previews = html.unescape(checked.text.split('id="previews"')[1])
    assert "Mei, our apologies: MG123 runs 95 min late." in previews
    assert "flight_delay/apology/en/sms" in checked.text.split('id="changes"')[1]

    saved = marketer.post(
        "/admin/messages/books/flight_delay",
        data={"_csrf": csrf(page), "body": body.replace(OLD, NEW), "action": "save"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    page = marketer.get(saved.headers["location"]).text
    assert "Draft saved." in page and "marketing-tester" in page
    empty = marketer.post("/admin/messages/books/flight_delay/publish", data={"_csrf": csrf(page)})
    assert empty.status_code == 422 and "Say why" in empty.text.split('id="reason"')[1]
    done = marketer.post(
        "/admin/messages/books/flight_delay/publish",
        data={"_csrf": csrf(page), "reason": "warmer apology"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert runtime.wording().versions["flight_delay"] == 2
    page = marketer.get(done.headers["location"]).text
    history = page.split('id="history"')[1]
    assert "Published v2" in page and "warmer apology" in history and "marketing-tester" in history

    back = marketer.post(
        "/admin/messages/books/flight_delay/rollback",
        data={"_csrf": csrf(page), "version": "1", "reason": "too casual"},
        follow_redirects=False,
    )
    assert back.status_code == 303
    assert runtime.wording().versions["flight_delay"] == 3
    assert OLD in _text(marketer.get(back.headers["location"]).text)


def test_a_book_that_cannot_be_read_is_refused_beside_the_field(
    marketer: TestClient[Any],
) -> None:
    page = marketer.get("/admin/messages/books/flight_delay").text
    broken = marketer.post(
        "/admin/messages/books/flight_delay",
        data={"_csrf": csrf(page), "body": "[[templates]\n", "action": "save"},
    )
    assert broken.status_code == 422 and 'aria-invalid="true"' in broken.text
    assert "Draft saved" not in broken.text and "waits" not in broken.text
    assert marketer.get("/admin/messages/books/nowhere").status_code == 404
    new = marketer.get("/admin/messages/books/cancellation").text  # starts from generic
    assert 'incident = "cancellation"' in _text(new) and "Not published yet" in new
