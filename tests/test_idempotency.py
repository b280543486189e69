"""Idempotency-Key and concurrent creates, over real HTTP against a real two-worker server.

The promise: an answer is the whole truth about what a request wrote. A 409 wrote nothing,
the decisions in the ledger are exactly those some answer showed, an incident is created
(201) once, and one caller's key never collides with another caller's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from api.app import create_app
from api.keys import KeyStore
from api.runtime import Runtime
from offers.ledger import idempotency
from offers.ledger.db import create_engine
from tests.conftest import postgres_schema
from tests.servers import start


@dataclass
class Server:
    base: str
    key: str
    engine: sa.Engine

    def post(self, body: dict[str, Any], key: str | None = None, api_key: str = "") -> Any:
        """POST /v1/incidents; returns (status, JSON body) for any status."""
        import json
        import urllib.error
        import urllib.request

        headers = {
            "content-type": "application/json",
            "authorization": f"Bearer {api_key or self.key}",
        }
        if key is not None:
            headers["idempotency-key"] = key
        request = urllib.request.Request(
            f"{self.base}/v1/incidents", json.dumps(body).encode(), headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def decided(self, incident_id: str) -> set[tuple[int, str]]:
        """(step, customer) of every decision the ledger holds for an incident."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT step, customer_id FROM decisions WHERE incident_id = :i"),
                {"i": incident_id},
            ).all()
        return {(int(s), str(c)) for s, c in rows}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`makegood serve --workers 2` on a fresh data folder, on SQLite or PostgreSQL."""
    tmp = tmp_path_factory.mktemp(f"idem-{request.param}")
    data = tmp / "data"
    env = {**os.environ, "MAKEGOOD_DATA": str(data)}
    env.pop("MAKEGOOD_DATABASE_URL", None)
    with _database(request.param) as url:
        if url is not None:
            env["MAKEGOOD_DATABASE_URL"] = url
        proc, base = start(env, tmp / "server.log", workers=2)
        engine = create_engine(url or f"sqlite:///{data / 'makegood.db'}")
        try:
            key = (data / "local-admin.key").read_text().strip()
            yield Server(base, key, engine)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            engine.dispose()


def _database(kind: str) -> Any:
    from contextlib import nullcontext

    return nullcontext(None) if kind == "sqlite" else postgres_schema()


def incident(incident_id: str, delay: int, n: int = 60) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "kind": "flight_delay",
        "occurred_at": "2026-11-25T07:00:00Z",
        "facts": {"delay_minutes": delay, "flight": "MG9", "origin": "TPE"},
        "customers": [f"c{i:06d}" for i in range(1, n + 1)],
    }


def shown(answers: list[tuple[int, Any]]) -> set[tuple[int, str]]:
    """(step, customer) of every decision some successful answer showed."""
    return {
        (d["step"], d["customer_id"])
        for status, body in answers
        if status in (200, 201)
        for d in body["decisions"]
    }


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_one_key_two_bodies_at_once_write_only_what_an_answer_showed(server: Server) -> None:
    """Eight simultaneous POSTs, one key, two bodies (delay 50 and 140): one body wins,
    the other's calls are 409s that wrote nothing, and every decision stored was shown."""
    bodies = [incident("MG9-TWO-BODIES", 50), incident("MG9-TWO-BODIES", 140)]
    answers = at_once([lambda i=i: server.post(bodies[i % 2], key="k-two") for i in range(8)])
    statuses = sorted(status for status, _ in answers)
    assert set(statuses) <= {201, 409} and statuses.count(201) == 4, answers
    winners = {body["step"] for status, body in answers if status == 201}
    assert len(winners) == 1  # every 201 is the one stored response
    conflicts = [body["detail"] for status, body in answers if status == 409]
    assert all("different request body" in detail for detail in conflicts), conflicts
    assert server.decided("MG9-TWO-BODIES") == shown(answers)


def test_one_key_six_incidents_at_once_decide_one(server: Server) -> None:
    """Six simultaneous POSTs with one key and six incident ids: one is decided, five are
    409s and those five incidents do not exist."""
    ids = [f"MG9-SIX-{i}" for i in range(6)]
    answers = at_once([lambda i=i: server.post(incident(i, 60), key="k-six") for i in ids])
    assert sorted(status for status, _ in answers) == [201, 409, 409, 409, 409, 409], answers
    decided = [i for i in ids if server.decided(i)]
    assert decided == [body["incident_id"] for status, body in answers if status == 201]
    with server.engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT count(*) FROM incidents WHERE incident_id LIKE 'MG9-SIX-%'")
        ).scalar()
    assert stored == 1


def test_concurrent_creates_of_one_incident_answer_201_once(server: Server) -> None:
    """Without a key, simultaneous creates of one incident: one 201, the others 200 with
    the same decisions."""
    body = incident("MG9-CREATES", 60)
    answers = at_once([lambda: server.post(body) for _ in range(6)])
    assert sorted(status for status, _ in answers) == [200, 200, 200, 200, 200, 201], answers
    assert len({str(sorted(b["decisions"], key=str)) for _, b in answers}) == 1
    assert server.decided("MG9-CREATES") == shown(answers)


def test_keys_are_scoped_per_api_key(server: Server) -> None:
    """Two callers who pick the same Idempotency-Key value each get their own incident."""
    store = KeyStore(server.engine)
    now = datetime.now(UTC)
    first = store.create("desk-a", "desk", now)[1]
    second = store.create("desk-b", "desk", now)[1]
    a = server.post(incident("MG9-SCOPE-A", 60), key="order-1", api_key=first)
    b = server.post(incident("MG9-SCOPE-B", 60), key="order-1", api_key=second)
    assert (a[0], b[0]) == (201, 201), (a, b)
    assert (a[1]["incident_id"], b[1]["incident_id"]) == ("MG9-SCOPE-A", "MG9-SCOPE-B")
    again = server.post(incident("MG9-SCOPE-A", 60), key="order-1", api_key=first)
    assert again == a  # each caller's stored response, replayed to that caller


# --- the claim's edges, through the test client on both databases ---------------------------


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def _scope(runtime: Runtime, headers: dict[str, str]) -> str:
    info = KeyStore(runtime.engine).check(headers["Authorization"].removeprefix("Bearer "))[0]
    assert info is not None
    return info.id


def _body(runtime: Runtime, incident_id: str, delay: int = 60) -> dict[str, Any]:
    return incident(incident_id, delay, 20) | {
        "customers": runtime.book.frame["customer_id"].to_list()[:20]
    }


def test_a_request_still_in_progress_is_a_409_with_retry_after(
    client: TestClient[Any],
    runtime: Runtime,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While another request holds the key, the same body waits a bounded time and is then
    told to retry; another body is told at once. Neither writes anything."""
    body = _body(runtime, "MG9-BUSY")
    scope = _scope(runtime, admin_headers)
    digest = idempotency.digest(_encoded(client, body))
    held = idempotency.claim(runtime.engine, scope, "k-busy", digest, datetime.now(UTC))
    assert held.token is not None
    monkeypatch.setattr("api.http.incidents.CLAIM_WAIT", timedelta(seconds=0.3))
    same = client.post("/v1/incidents", json=body, headers={"Idempotency-Key": "k-busy"})
    assert same.status_code == 409 and "in progress" in same.json()["detail"]
    assert int(same.headers["retry-after"]) >= 1
    other = client.post(
        "/v1/incidents", json=_body(runtime, "MG9-BUSY", 140), headers={"Idempotency-Key": "k-busy"}
    )
    assert other.status_code == 409 and "different request body" in other.json()["detail"]
    assert runtime.ledger.incident("MG9-BUSY") is None
    idempotency.settle(runtime.engine, scope, "k-busy", held.token, 201, b'{"done": true}')
    assert idempotency.claim(runtime.engine, scope, "k-busy", digest, datetime.now(UTC)).response


def _encoded(client: TestClient[Any], body: dict[str, Any]) -> bytes:
    """The request body as the server digests it: the decoded request, encoded again."""
    import msgspec

    from api.http.wire import IncidentCreate

    return msgspec.json.encode(msgspec.convert(body, IncidentCreate, strict=False))


def test_a_failed_request_releases_its_key(client: TestClient[Any], runtime: Runtime) -> None:
    """A request refused while it held the key (unknown customers) frees it: the corrected
    request under the same key is decided."""
    bad = _body(runtime, "MG9-RETRY") | {"customers": ["nobody"]}
    headers = {"Idempotency-Key": "k-retry"}
    assert client.post("/v1/incidents", json=bad, headers=headers).status_code == 422
    good = client.post("/v1/incidents", json=_body(runtime, "MG9-RETRY"), headers=headers)
    assert good.status_code == 201 and good.json()["issued"] == 20


def test_a_claim_left_by_a_dead_request_is_taken_over(runtime: Runtime) -> None:
    """A claim nobody settled or released (its process died) is taken over once it is
    older than the longest a request may run; a fresh one is not."""
    engine, now = runtime.engine, datetime.now(UTC)
    dead = idempotency.claim(engine, "scope", "k-dead", "d" * 64, now - idempotency.STALE_AFTER)
    assert dead.token is not None
    fresh = idempotency.claim(engine, "scope", "k-dead", "d" * 64, now - timedelta(seconds=1))
    assert fresh.token is None
    later = idempotency.claim(engine, "scope", "k-dead", "d" * 64, now + timedelta(seconds=1))
    assert later.token is not None and later.token != dead.token
    assert not idempotency.settle(engine, "scope", "k-dead", dead.token, 201, b"{}")
    assert idempotency.settle(engine, "scope", "k-dead", later.token, 201, b"{}")


def test_migration_keeps_stored_responses_unscoped_and_gives_them_back(db_url: str) -> None:
    """Migration 0014: a response stored before keys were scoped stays, under a scope no
    caller has, so a caller's own key of that name is theirs; undone, each key holds its
    first stored response again and claims in progress are dropped."""
    from alembic import command
    from alembic.config import Config

    from offers.ledger.db import MIGRATIONS, upgrade

    engine = create_engine(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    at = datetime(2026, 11, 25, tzinfo=UTC)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0013")
        conn.execute(
            sa.text(
                "INSERT INTO idempotency (key, body_digest, status_code, response, created_at)"
                " VALUES ('k1', :d, 201, :r, :at)"
            ),
            {"d": "a" * 64, "r": b'{"old": 1}', "at": at},
        )
    upgrade(engine)
    read = sa.text("SELECT scope, key, status_code, response, claim FROM idempotency")
    with engine.connect() as conn:
        carried = [(s, k, c, bytes(r), t) for s, k, c, r, t in conn.execute(read)]
    mine = idempotency.claim(engine, "caller", "k1", "b" * 64, at + timedelta(days=1))
    assert mine.token is not None
    assert idempotency.settle(engine, "caller", "k1", mine.token, 200, b'{"new": 1}')
    assert idempotency.claim(engine, "caller", "k2", "c" * 64, at).token is not None
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0013")
        back = conn.execute(sa.text("SELECT key, status_code, response FROM idempotency")).all()
    upgrade(engine)
    engine.dispose()
    assert carried == [("", "k1", 201, b'{"old": 1}', None)]
    assert [(k, s, bytes(r)) for k, s, r in back] == [("k1", 201, b'{"old": 1}')]
