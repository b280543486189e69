"""Previews the engine works out wait in threads of their own: a burst of new situations
never holds up incident writes and status reads, which run in the shared thread pool."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from litestar.testing import TestClient

from api.app import create_app
from api.http.preview_threads import PREVIEW_THREADS
from api.runtime import Runtime
from tests.test_http import body


def test_previews_waiting_for_the_engine_hold_up_no_write_or_status_read(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    app = create_app(runtime)
    with TestClient(app=app) as client, ThreadPoolExecutor(max_workers=80) as pool:
        client.headers.update(admin_headers)
        assert client.post("/v1/incidents", json=body(runtime, n=5)).status_code == 201
        customers = runtime.book.frame["customer_id"].to_list()[200:260]  # more than the
        # 40 threads the shared pool has
        ask = {
            "kind": "flight_delay",
            "occurred_at": "2026-11-23T07:05:00Z",
            "facts": {"delay_minutes": 50, "flight": "MG9"},
        }
        engine = runtime.previews._engine
        engine.acquire()  # the engine busy: every new situation waits for it
        try:
            previews = [
                pool.submit(
                    client.post,
                    "/v1/decisions/preview",
                    json=ask | {"incident_id": f"P-{n}", "customer_id": customer},
                )
                for n, customer in enumerate(customers)
            ]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # until the previews' threads are all taken
                limiter = app.state.get("preview_threads")
                if limiter is not None and limiter.borrowed_tokens == PREVIEW_THREADS:
                    break
                time.sleep(0.05)
            status = pool.submit(client.get, "/v1/incidents/MG123-2026-11-23")
            assert status.result(timeout=30).status_code == 200
            escalated = pool.submit(
                client.patch,
                "/v1/incidents/MG123-2026-11-23",
                json={"facts": {"delay_minutes": 100, "flight": "MG123", "origin": "TPE"}},
            )
            assert escalated.result(timeout=60).status_code == 200
            assert not any(p.done() for p in previews)  # all still waiting for the engine
        finally:
            engine.release()
        answers: list[Any] = [p.result(timeout=120) for p in previews]
    assert [a.status_code for a in answers] == [200] * len(customers)
