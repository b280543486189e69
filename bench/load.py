"""A bounded loopback load against `makegood serve --workers 2` on PostgreSQL.

    python bench/load.py                          # 60 s at 500 requests/s after a warm-up
    python bench/load.py --rate 500 --writes 10   # five times the incident writes
    python bench/load.py --rate 500 --writes 10 --passengers 300   # of full flights
    python bench/load.py --seconds 20 --rate 200 --warmup 10

A service desk's traffic during a disruption: agents preview what the customer on the
line would get from one of the open incidents, while the desk's systems open new
incidents (50 customers each, `--passengers`), escalate them, and read status, decision
pages and the follow-up feed. Per 100 requests: 3 status reads, 1 decision page, 1
follow-up feed, the rest previews; and `--writes` incident writes per second, half new
incidents and half escalations (2 by default: 3,600 new incidents an hour, more than a
hub's worst day brings; `--writes` at 2% of the rate is the old write-heavy mix).
Requests leave on a fixed schedule (an open loop, `bench/openloop.py`), so a slow server
shows up as latency, not as less load. Issue 20's targets for the write-heavy mix are
printed last: no errors, p99 <= 100 ms overall and <= 150 ms for writes, memory flat.

A warm-up at a fifth of the rate comes first (each worker has the engine decide every
situation of the open incidents once; see offers/preview.py) and is reported on its own
line. Then: requests,
errors, p50/p99 per kind, and the workers' resident memory, which must stay flat (within
10%) over the last 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.keys import KeyStore  # noqa: E402
from bench import openloop  # noqa: E402
from offers.ledger.db import create_engine  # noqa: E402
from tests.servers import start  # noqa: E402

POSTGRES = os.environ.get("MAKEGOOD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
OCCURRED = "2026-11-25T07:05:00Z"
OPEN = [f"OPEN-{k}" for k in range(1, 4)]

#: What each of 100 consecutive requests is (the schedule repeats).
MIX = ["preview"] * 95 + ["status"] * 3 + ["page", "followups"]


def _rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def _p99(ordered: list[float]) -> float:
    return ordered[int(0.99 * (len(ordered) - 1))]


def _incident(incident_id: str, customers: list[str], delay: int) -> bytes:
    body = {
        "incident_id": incident_id,
        "kind": "flight_delay",
        "occurred_at": OCCURRED,
        "facts": {"delay_minutes": delay, "flight": incident_id},
        "customers": customers,
    }
    return json.dumps(body).encode()


class Desk:
    """The schedule of requests: `next(i)` says what the i-th one is."""

    def __init__(self, every: int, passengers: int = 50, seed: int = 7) -> None:
        self.every = every  # requests from one new incident to the next
        self.passengers = passengers  # customers of each new incident
        self.rng = random.Random(seed)
        self.sent: dict[int, str] = {}  # request number -> incident it creates
        self.created: list[str] = []  # incidents whose creation was answered, in order

    def customers(self, n: int) -> list[str]:
        return sorted({f"c{self.rng.randrange(1, 10_001):06d}" for _ in range(n)})

    def answered(self, i: int, status: int) -> None:
        incident = self.sent.pop(i, None)
        if incident is not None and 200 <= status < 300:
            self.created.append(incident)

    def next(self, i: int) -> tuple[str, str, str, bytes | None]:
        kind = MIX[i % len(MIX)]
        if i % self.every == 0:
            kind = "create"
        elif i % self.every == self.every // 2:
            kind = "escalate"
        ready = self.created[-200:]  # escalate and page only what exists
        if kind in ("escalate", "page") and not ready:
            kind = "status"
        if kind == "preview":
            incident = self.rng.choice(OPEN)
            body = {
                "incident_id": incident,
                "kind": "flight_delay",
                "occurred_at": OCCURRED,
                "facts": {"delay_minutes": 100, "flight": incident},
                "customer_id": self.customers(1)[0],
            }
            return kind, "POST", "/v1/decisions/preview", json.dumps(body).encode()
        if kind == "create":
            incident = f"LOAD-{uuid.uuid4().hex[:10]}"
            self.sent[i] = incident
            body = _incident(incident, self.customers(self.passengers), 30)
            return kind, "POST", "/v1/incidents", body
        if kind == "escalate":
            incident = self.rng.choice(ready)
            delay = self.rng.choice([60, 100, 140])
            body = json.dumps({"facts": {"delay_minutes": delay, "flight": incident}}).encode()
            return kind, "PATCH", f"/v1/incidents/{incident}", body
        if kind == "page":
            return kind, "GET", f"/v1/incidents/{self.rng.choice(ready)}/decisions?limit=50", None
        if kind == "status":
            return kind, "GET", f"/v1/incidents/{self.rng.choice(OPEN)}", None
        return kind, "GET", "/v1/followups?due_before=2026-12-31T00:00:00Z&limit=100", None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--warmup", type=int, default=60, help="seconds at rate/5, not counted")
    parser.add_argument(
        "--writes", type=float, default=2.0, help="incident writes per second (create, escalate)"
    )
    parser.add_argument(
        "--passengers", type=int, default=50, help="customers of each new incident (a flight)"
    )
    args = parser.parse_args()

    schema = f"load_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    data = Path(tempfile.mkdtemp(prefix="makegood-load-"))
    url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    env = {
        **os.environ,
        "MAKEGOOD_DATA": str(data),
        "MAKEGOOD_DATABASE_URL": url,
        # one desk integration sends all of it: lift the per-key rate (default 200/s)
        "MAKEGOOD_RATE": "1000000",
        "MAKEGOOD_RATE_BURST": "1000000",
    }
    try:
        server, base = start(env, data / "server.log", workers=2)
        try:
            engine = create_engine(url)
            key = KeyStore(engine).create("load-desk", "desk", datetime.now(UTC))[1]
            engine.dispose()
            print(run(base, key, args, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=60)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        shutil.rmtree(data, ignore_errors=True)


def _per_window(timeline: list[tuple[float, float]], width: float) -> list[float]:
    """p99 latency (ms) of the requests due in each `width`-second window, in order."""
    windows: dict[int, list[float]] = {}
    for due, took in timeline:
        windows.setdefault(int(due // width), []).append(took)
    return [_p99(sorted(v)) for _, v in sorted(windows.items())]


def _previews(base: str) -> dict[str, float]:
    """`makegood_previews_total` by source, summed over the workers (`/metrics`)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    found = re.findall(r'^makegood_previews_total\{source="(\w+)"\} (\S+)$', text, re.M)
    return {source: float(n) for source, n in found}


def run(base: str, key: str, args: argparse.Namespace, pid: int) -> str:
    seconds, rate, warmup, writes = args.seconds, args.rate, args.warmup, args.writes
    desk = Desk(every=max(2, round(2 * rate / writes)), passengers=args.passengers)

    async def open_incidents() -> None:  # the incidents agents preview against
        for incident in OPEN:
            body = _incident(incident, desk.customers(200), 60)

            def create(_i: int, body: bytes = body) -> tuple[str, str, str, bytes | None]:
                return "open", "POST", "/v1/incidents", body

            opened = await openloop.run(base, key, create, 1, 1)
            assert not opened.errors, f"could not open {incident}"

    asyncio.run(open_incidents())
    lines = [
        f"open loop at {rate:.0f} requests/s ({writes:g} incident writes/s of "
        f"{args.passengers} passengers), 2 workers on PostgreSQL"
    ]
    if warmup:
        warm = asyncio.run(
            openloop.run(base, key, desk.next, rate / 5, warmup, answered=desk.answered)
        )
        every = sorted(x for v in warm.latencies.values() for x in v)
        lines.append(
            f"warm-up {warmup} s at {rate / 5:.0f} requests/s: "
            f"p50 {statistics.median(every):.1f} ms, p99 {_p99(every):.1f} ms, "
            f"errors {sum(warm.errors.values())}"
        )
    memory: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not done.wait(1.0):
            memory.append((time.monotonic() - started, _rss_mib(_children(pid) or [pid])))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    before = _previews(base)
    result = asyncio.run(openloop.run(base, key, desk.next, rate, seconds, answered=desk.answered))
    after = _previews(base)
    done.set()
    sampler.join()

    every = sorted(x for v in result.latencies.values() for x in v)
    lines.append(f"{len(every)} requests in {seconds} s; errors: {sum(result.errors.values())}")
    lines.append(
        f"all: p50 {statistics.median(every):.1f} ms, p99 {_p99(every):.1f} ms"
        f" (the sender fell {result.late_ms:.1f} ms behind schedule at worst)"
    )
    for kind, values in sorted(result.latencies.items()):
        values.sort()
        lines.append(
            f"  {kind:<10} n={len(values):>6}  p50 {statistics.median(values):7.1f} ms"
            f"  p99 {_p99(values):7.1f} ms  errors {result.errors.get(kind, 0)}"
            + "".join(
                f" ({n} x {s or 'no answer'})" for s, n in result.statuses.get(kind, {}).items()
            )
        )
    lines.append("p99 per 5 s: " + " ".join(f"{v:.0f}" for v in _per_window(result.timeline, 5)))
    memo, worked = (after.get(k, 0.0) - before.get(k, 0.0) for k in ("memory", "worked_out"))
    if memo + worked:
        lines.append(
            f"previews answered from memory: {100 * memo / (memo + worked):.1f}% "
            f"({worked:.0f} worked out by the engine or read from the ledger)"
        )
    last = [m for t, m in memory if t >= seconds - 30]
    low, high = min(last), max(last)
    flat = (high - low) / low <= 0.10
    lines.append(
        f"workers' resident memory over the last 30 s: {low:.0f}-{high:.0f} MiB "
        f"({100 * (high - low) / low:.1f}% spread, {'flat' if flat else 'NOT flat'})"
    )
    writes = sorted(x for k in ("create", "escalate") for x in result.latencies.get(k, []))
    errors = sum(result.errors.values())
    checks = [
        ("0 errors", errors == 0),
        (f"p99 {_p99(every):.0f} ms <= 100 ms overall", _p99(every) <= 100),
        (
            f"p99 {_p99(writes) if writes else 0:.0f} ms <= 150 ms for writes",
            not writes or _p99(writes) <= 150,
        ),
        ("memory flat", flat),
    ]
    lines.append(
        "targets: " + "; ".join(f"{what}: {'met' if ok else 'NOT met'}" for what, ok in checks)
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
