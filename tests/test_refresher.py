"""A served worker's refresher: what other processes publish is read in its rounds, not by
requests; feedback recorded here still reaches the next decision at once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.keys import KeyStore
from api.refresher import Refresher
from api.runtime import Runtime, learning_source
from offers.catalog import DEFAULTS
from offers.ledger import publish_shipped_books, publish_table
from offers.messages import load_default_book
from tests.test_message_books import NEW_SMS, publish_elsewhere


@pytest.fixture
def refresher(runtime: Runtime) -> Iterator[Refresher]:
    """Started as a served worker starts it, its rounds left to the test (one an hour)."""
    runtime.learning = learning_source(runtime.settings, runtime.ledger)
    publish_shipped_books(runtime.ledger, load_default_book(), datetime.now(UTC))
    refresher = Refresher(runtime, KeyStore(runtime.engine), every=3600)
    refresher.start()
    yield refresher
    refresher.stop()


def test_a_publish_elsewhere_is_served_after_the_next_round(
    runtime: Runtime, refresher: Refresher
) -> None:
    publish_elsewhere(runtime)
    body = (DEFAULTS / "offers.toml").read_text(encoding="utf-8")
    publish_table(runtime.ledger, "flight-delay", body, "other-worker", "again", datetime.now(UTC))
    before = runtime.table_version
    runtime._messages_checked_at -= 1.5  # however late: a request reads no books itself
    assert runtime.wording().versions["flight_delay"] == 1
    assert runtime.table_version == before
    refresher.tick()  # the refresher's next round, within a second
    assert runtime.wording().versions["flight_delay"] == 2
    assert any(NEW_SMS in t.text for t in runtime.wording().templates)
    assert runtime.table_version == ("flight-delay", before[1] + 1)
    refresher.stop()  # without a refresher, requests check on demand again
    assert not runtime.tables.watched and not runtime.messages_watched


def test_feedback_recorded_here_reaches_the_next_decision_at_once(
    runtime: Runtime, refresher: Refresher, admin_headers: dict[str, str]
) -> None:
    learning = runtime.learning
    assert learning is not None and learning.watched
    now = datetime.now(UTC)
    assert learning(now).posteriors.height == 0
    ids = runtime.book.frame["customer_id"].head(40).to_list()
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        created = client.post("/v1/incidents", json=_flight("MG9", ids))
        assert created.status_code == 201, created.text
        given = [d["decision_id"] for d in created.json()["decisions"] if d.get("perk")]
        assert given
        events: list[dict[str, Any]] = [
            {
                "event_id": f"e-{kind}-{decision}",
                "kind": kind,
                "occurred_at": now.isoformat(),
                "decision_id": decision,
            }
            for decision in given
            for kind in ("delivered", "redeemed")
        ]
        sent = client.post("/v1/feedback", json={"events": events})
        assert sent.status_code == 200, sent.text
    delivered = learning(datetime.now(UTC)).posteriors["delivered"].sum()
    assert delivered == len(given)


def _flight(incident_id: str, customers: list[str]) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "kind": "flight_delay",
        "occurred_at": datetime.now(UTC).isoformat(),
        "facts": {"delay_minutes": 200, "flight": "MG9", "origin": "TPE"},
        "customers": customers,
    }


def test_a_revocation_elsewhere_counts_after_the_next_round_and_here_at_once(
    runtime: Runtime, refresher: Refresher
) -> None:
    keys = refresher.keys
    assert keys is not None
    elsewhere = KeyStore(runtime.engine)  # another process's store
    now = datetime.now(UTC)
    (one, first), (two, second) = keys.create("a", "desk", now), keys.create("b", "desk", now)
    assert keys.verify(first) == one and keys.verify(second) == two
    elsewhere.revoke(one.id, now)
    assert keys.remembered(first) == (one, False)  # verified before, the round not yet come
    refresher.tick()
    assert keys.remembered(first) == (None, False) and keys.verify(first) is None
    keys.revoke(two.id, now)  # through this worker: refused at once
    assert keys.remembered(second) == (None, False) and keys.verify(second) is None
    assert keys.verify(keys.create("c", "desk", now)[1]) is not None
