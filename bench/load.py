"""A bounded loopback load against `makegood serve --workers 2` on PostgreSQL.

    python bench/load.py                        # 60 s at 40 requests/s, fresh schema
    python bench/load.py --seconds 20 --rate 20

A service desk's traffic: single-customer previews, small incidents (50 customers) created
and then escalated, status and decision reads, follow-up feeds. Requests are paced at a
fixed rate (an open loop, so a slow server shows up as latency, not as less load). Prints
requests, errors, p50/p99 latency per kind, and the resident memory of the workers, which
must stay flat (within 10%) over the last 30 s.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import start  # noqa: E402

POSTGRES = os.environ.get("MAKEGOOD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second")
    args = parser.parse_args()

    schema = f"load_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    data = Path(tempfile.mkdtemp(prefix="makegood-load-"))
    env = {
        **os.environ,
        "MAKEGOOD_DATA": str(data),
        "MAKEGOOD_DATABASE_URL": f"{POSTGRES}?options=-csearch_path%3D{schema}",
    }
    try:
        server, base = start(env, data / "server.log", workers=2)
        try:
            key = (data / "local-admin.key").read_text().strip()
            print(run(base, key, args.seconds, args.rate, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=60)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run(base: str, key: str, seconds: int, rate: float, pid: int) -> str:
    client = httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=30)
    rng = random.Random(7)
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    incidents: list[str] = []
    memory: list[tuple[float, float]] = []

    def request(kind: str) -> None:
        ids = [f"c{rng.randrange(1, 10_001):06d}" for _ in range(50)]
        occurred = "2026-11-25T07:05:00Z"
        started = time.perf_counter()
        if kind == "preview":
            response = client.post(
                "/v1/decisions/preview",
                json={
                    "kind": "flight_delay",
                    "occurred_at": occurred,
                    "facts": {"delay_minutes": 50, "flight": "MG1"},
                    "customer_id": ids[0],
                },
            )
        elif kind == "create" or not incidents:
            kind = "create"
            incident = f"LOAD-{uuid.uuid4().hex[:10]}"
            response = client.post(
                "/v1/incidents",
                json={
                    "incident_id": incident,
                    "kind": "flight_delay",
                    "occurred_at": occurred,
                    "facts": {"delay_minutes": 30, "flight": "MG1"},
                    "customers": sorted(set(ids)),
                },
            )
            with lock:
                incidents.append(incident)
        elif kind == "escalate":
            incident = rng.choice(incidents)
            delay = rng.choice([60, 100, 140])
            response = client.patch(
                f"/v1/incidents/{incident}",
                json={"facts": {"delay_minutes": delay, "flight": "MG1"}},
            )
        elif kind == "status":
            response = client.get(f"/v1/incidents/{rng.choice(incidents)}")
        else:
            response = client.get(
                "/v1/followups", params={"due_before": "2026-12-31T00:00:00Z", "limit": 100}
            )
        elapsed = time.perf_counter() - started
        with lock:
            latencies[kind].append(elapsed)
            if response.status_code >= 400:
                errors[kind] += 1

    kinds = ["preview"] * 5 + ["create"] * 2 + ["escalate"] * 2 + ["status"] * 2 + ["followups"]
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        n = 0
        while (now := time.monotonic() - start) < seconds:
            due = start + n / rate
            if (pause := due - time.monotonic()) > 0:
                time.sleep(pause)
            pool.submit(request, rng.choice(kinds))
            n += 1
            if not memory or now - memory[-1][0] >= 1.0:
                memory.append((now, _rss_mib(_children(pid) or [pid])))
    client.close()

    lines = [f"{sum(len(v) for v in latencies.values())} requests in {seconds} s"]
    lines.append(f"errors: {sum(errors.values())}")
    every = sorted(x for v in latencies.values() for x in v)
    p99_all = every[min(len(every) - 1, int(0.99 * len(every)))]
    lines.append(f"all: p50 {1000 * statistics.median(every):.1f} ms, p99 {1000 * p99_all:.1f} ms")
    for kind, values in sorted(latencies.items()):
        values.sort()
        p99 = values[min(len(values) - 1, int(0.99 * len(values)))]
        lines.append(
            f"  {kind:<10} n={len(values):>5}  p50 {1000 * statistics.median(values):6.1f} ms"
            f"  p99 {1000 * p99:6.1f} ms  errors {errors[kind]}"
        )
    last = [m for t, m in memory if t >= seconds - 30]
    low, high = min(last), max(last)
    flat = (high - low) / low <= 0.10
    lines.append(
        f"workers' resident memory over the last 30 s: {low:.0f}-{high:.0f} MiB "
        f"({100 * (high - low) / low:.1f}% spread, {'flat' if flat else 'NOT flat'})"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
