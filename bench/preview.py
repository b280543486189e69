"""Single-customer preview over HTTP, next to a trivial endpoint of the same server.

    python bench/preview.py                  # 10 s per measurement, one worker, SQLite
    python bench/preview.py --seconds 20 --rate 500

One `makegood serve` worker on a fresh data folder (loopback only), called with a desk
key (the per-key rate lifted, as for a busy desk integration). Previews cycle through every
customer of the bootstrapped profiles, a 50-minute delay. In the same run:
- a first pass of previews through every customer, while each situation is decided by the
  engine once (offers/preview.py); what follows measures a desk asking about customers
  whose situations are known;
- most requests per second with wrk at 64 connections: `GET /healthz` (the trivial
  endpoint: same app, same middleware, no work) and `POST /v1/decisions/preview`, and
  their ratio;
- latency of the preview at a fixed rate (open loop, bench/openloop.py: requests leave on
  schedule whether or not earlier ones came back), p50 and p99.

Each figure is printed beside its target: the preview at least half the trivial endpoint's
requests/s, and p99 at most 10 ms at 500 previews/s.

Needs wrk (`apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.keys import KeyStore  # noqa: E402
from api.settings import Settings  # noqa: E402
from bench import openloop  # noqa: E402
from offers.ledger.db import create_engine  # noqa: E402
from tests.servers import start  # noqa: E402

SHARE_TARGET = 0.5  # preview requests/s over /healthz's, one worker, same run
P99_TARGET_MS = 10.0  # preview latency, open loop at the rate asked (500/s by default)

_LUA = """
local ids = {{{ids}}}
local n = 0
init = function(args) n = tonumber(args[1] or "0") end  -- where an earlier run stopped
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer {key}"
request = function()
  n = n + 1
  local body = string.gsub([[{body}]], "CUSTOMER", ids[n % #ids + 1])
  return wrk.format(nil, nil, nil, body)
end
"""


def _wrk(
    url: str, seconds: float, script: Path | None = None, *args: str
) -> tuple[float, int, int]:
    """(requests/s, requests, non-2xx responses) at 64 connections on one thread."""
    cmd = ["wrk", "-t1", "-c64", f"-d{seconds}s", "--latency", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    out = subprocess.run([*cmd, *args], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    sent = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, sent, int(bad.group(1)) if bad else 0


def _cpu_seconds(pid: int) -> float:
    """User and system CPU the process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk_cpu(
    pid: int, url: str, seconds: float, script: Path | None = None
) -> tuple[float, int, float]:
    """`_wrk`, and the server's CPU milliseconds per request: on a host whose other work
    steals CPU, requests/s drop but a request's CPU cost barely moves."""
    before = _cpu_seconds(pid)
    rps, sent, bad = _wrk(url, seconds, script)
    return rps, bad, (_cpu_seconds(pid) - before) * 1000 / max(sent, 1)


def _first_pass(url: str, script: Path, customers: int) -> float:
    """Previews until every customer was asked once (each situation decided by the engine
    once), in runs of a few seconds each starting where the last stopped; requests/s."""
    started, sent = time.perf_counter(), 0
    while sent < customers:
        sent += _wrk(url, 5, script, str(sent))[1]
    return sent / (time.perf_counter() - started)


def http_section(seconds: int = 10, rate: float = 500.0) -> None:
    if shutil.which("wrk") is None:
        print("HTTP: wrk not installed (apt-get install wrk)")
        return
    data = Path(tempfile.mkdtemp(prefix="makegood-http-"))
    env = {k: v for k, v in os.environ.items() if k != "MAKEGOOD_DATABASE_URL"}
    env["MAKEGOOD_DATA"] = str(data)
    # one service desk integration sends all of it: lift the per-key rate (default 200/s)
    env["MAKEGOOD_RATE"] = env["MAKEGOOD_RATE_BURST"] = "1000000"
    server, base = start(env, data / "server.log")
    try:
        engine = create_engine(Settings.from_env(data).db_url)
        key = KeyStore(engine).create("bench-desk", "desk", datetime.now(UTC))[1]
        engine.dispose()
        snapshot = sorted((data / "profiles").glob("snapshot-*.parquet"))[-1]
        ids = pl.read_parquet(snapshot, columns=["customer_id"])["customer_id"].to_list()
        body = {
            "kind": "flight_delay",
            "occurred_at": "2026-11-23T07:05:00Z",
            "facts": {"delay_minutes": 50, "flight": "MG123", "origin": "TPE"},
            "customer_id": "CUSTOMER",
        }
        script = data / "preview.lua"
        quoted = ",".join(f'"{i}"' for i in ids)
        script.write_text(_LUA.format(ids=quoted, body=json.dumps(body), key=key))
        preview_url = f"{base}/v1/decisions/preview"
        print(f"HTTP, one worker, SQLite, previews cycling through all {len(ids):,} customers:")
        started = time.perf_counter()
        cold = _first_pass(preview_url, script, len(ids))
        print(
            f"  first pass (every customer once, each situation decided once by the engine): "
            f"{cold:.0f} requests/s over {time.perf_counter() - started:.0f} s"
        )
        _wrk(f"{base}/healthz", 2)  # warm up
        trivial, _, cpu_trivial = _wrk_cpu(server.pid, f"{base}/healthz", seconds)
        preview, bad, cpu_preview = _wrk_cpu(server.pid, preview_url, seconds, script)
        print(f"  wrk at 64 connections for {seconds} s:")
        print(
            f"  GET /healthz (trivial)            {trivial:8.0f} requests/s   "
            f"server CPU {cpu_trivial:.3f} ms per request"
        )
        print(
            f"  POST /v1/decisions/preview        {preview:8.0f} requests/s   "
            f"server CPU {cpu_preview:.3f} ms per request ({bad} non-2xx)"
        )
        share = preview / trivial
        print(
            f"  preview / trivial                 {share:8.1%}   (target >= {SHARE_TARGET:.0%}: "
            f"{'met' if share >= SHARE_TARGET else 'NOT met'}; by CPU per request "
            f"{cpu_trivial / cpu_preview:.1%})"
        )
        wanted = rate
        if preview < rate:  # an open loop above capacity only measures the queue growing
            print(
                f"  preview at {rate:.0f} requests/s: not attempted, one worker tops out at "
                f"{preview:.0f}; measured at 80% of that instead"
            )
            rate = 0.8 * preview
        bodies = [json.dumps(body | {"customer_id": i}).encode() for i in ids]
        path = "/v1/decisions/preview"

        def previews(i: int) -> tuple[str, str, str, bytes | None]:
            return "preview", "POST", path, bodies[i % len(bodies)]

        result = asyncio.run(openloop.run(base, key, previews, rate, seconds))
        latencies = result.latencies.get("preview", [])
        cuts = statistics.quantiles(latencies, n=100)
        print(
            f"  preview at {rate:.0f} requests/s, open loop: "
            f"p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms ({len(latencies):,} requests, "
            f"{sum(result.errors.values())} errors; the sender fell {result.late_ms:.1f} ms "
            "behind schedule at worst)"
        )
        met = rate >= wanted and cuts[98] <= P99_TARGET_MS
        print(
            f"  p99 at {wanted:.0f} requests/s        {cuts[98]:8.1f} ms   (target <= "
            f"{P99_TARGET_MS:.0f} ms: {'met' if met else 'NOT met'})"
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=float, default=500.0)
    args = parser.parse_args()
    http_section(args.seconds, args.rate)


if __name__ == "__main__":
    main()
