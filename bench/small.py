"""Small incidents, served one at a time, next to the trivial endpoint on the same server.

    python bench/small.py                    # SQLite and PostgreSQL, 300 passengers, 30 rounds
    python bench/small.py --no-postgres --rounds 10 --passengers 50

A service desk's usual call: one flight of 50-300 passengers, created and then escalated
45 minutes later. On one `makegood serve` worker, requests go one at a time over one
kept-alive connection: `GET /healthz` (the gauge: what any request costs this server),
then for each round a new incident of `--passengers` customers (its first step decided
and recorded) and its escalation (the next step). Prints the median of each, as a
multiple of the gauge (target: <= 50x each, i.e. >= 2% of the gauge's requests/s).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.keys import KeyStore  # noqa: E402
from offers.ledger.db import create_engine  # noqa: E402
from tests.servers import start  # noqa: E402

POSTGRES = os.environ.get("MAKEGOOD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TARGET = 50.0


class Client:
    """One kept-alive connection, as a desk's integration holds it."""

    def __init__(self, base: str, key: str) -> None:
        url = urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        self.headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}

    def timed(self, method: str, path: str, body: object = None) -> tuple[float, int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        start = time.perf_counter()
        self.conn.request(method, path, data, self.headers)
        answer = self.conn.getresponse()
        payload = answer.read()
        return time.perf_counter() - start, answer.status, payload


def _incident(incident_id: str, customers: list[str], delay: int) -> dict[str, object]:
    return {
        "incident_id": incident_id,
        "kind": "flight_delay",
        "occurred_at": "2026-11-25T07:05:00Z",
        "facts": {"delay_minutes": delay, "flight": "MG123", "origin": "TPE"},
        "customers": customers,
    }


def measure(base: str, key: str, passengers: int, rounds: int) -> dict[str, float]:
    """Median seconds of the gauge, of a create and of an escalation."""
    client = Client(base, key)
    rng = random.Random(7)
    for _ in range(200):  # warm the connection and the server's caches
        client.timed("GET", "/healthz")
    gauge = [client.timed("GET", "/healthz")[0] for _ in range(2000)]
    creates: list[float] = []
    escalations: list[float] = []
    for i in range(rounds + 2):
        incident = f"SMALL-{uuid.uuid4().hex[:10]}"
        ids = sorted({f"c{rng.randrange(1, 10_001):06d}" for _ in range(passengers)})
        took, status, body = client.timed("POST", "/v1/incidents", _incident(incident, ids, 50))
        assert status in (200, 201), body[:300]
        later_facts = {"facts": {"delay_minutes": 100, "flight": "MG123", "origin": "TPE"}}
        later, status, body = client.timed("PATCH", f"/v1/incidents/{incident}", later_facts)
        assert status == 200, body[:300]
        if i >= 2:  # the first rounds warm what a version prepares once
            creates.append(took)
            escalations.append(later)
    return {
        "healthz": statistics.median(gauge),
        "create": statistics.median(creates),
        "escalation": statistics.median(escalations),
    }


def report(label: str, passengers: int, figures: dict[str, float]) -> list[str]:
    gauge = figures["healthz"]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [f"{label}, one worker, one request at a time (load average after: {load}):"]
    lines.append(f"  GET /healthz (gauge)               {gauge * 1000:8.2f} ms")
    for what in ("create", "escalation"):
        took = figures[what]
        ratio = took / gauge
        verdict = "met" if ratio <= TARGET else "NOT met"
        lines.append(
            f"  {what:<10} {passengers} passengers       {took * 1000:8.2f} ms"
            f"  = {ratio:6.1f}x the gauge (target <= {TARGET:.0f}x: {verdict})"
        )
    return lines


def serve(env: dict[str, str], data: Path) -> tuple[str, str, object]:
    server, base = start(env, data / "server.log", workers=1)
    engine = create_engine(env.get("MAKEGOOD_DATABASE_URL") or f"sqlite:///{data}/makegood.db")
    key = KeyStore(engine).create("bench-desk", "desk", datetime.now(UTC))[1]
    engine.dispose()
    return base, key, server


def run_backend(label: str, url: str | None, passengers: int, rounds: int) -> list[str]:
    data = Path(tempfile.mkdtemp(prefix="makegood-small-"))
    env = {
        **os.environ,
        "MAKEGOOD_DATA": str(data),
        "MAKEGOOD_RATE": "1000000",
        "MAKEGOOD_RATE_BURST": "1000000",
    }
    if url:
        env["MAKEGOOD_DATABASE_URL"] = url
    try:
        base, key, server = serve(env, data)
        try:
            return report(label, passengers, measure(base, key, passengers, rounds))
        finally:
            server.terminate()  # type: ignore[attr-defined]
            server.wait(timeout=60)  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passengers", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    if not args.no_sqlite:
        print("\n".join(run_backend("SQLite", None, args.passengers, args.rounds)))
    if not args.no_postgres:
        schema = f"small_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://"))
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
            print("\n".join(run_backend("PostgreSQL", url, args.passengers, args.rounds)))
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
