"""Single-customer preview over HTTP, next to a trivial endpoint of the same server.

    python bench/preview.py                  # 10 s per measurement, one worker, SQLite
    python bench/preview.py --seconds 20 --rate 500

One `makegood serve` worker on a fresh data folder (loopback only), called with a desk
key (the per-key rate lifted, as for a busy desk integration). Previews cycle through every
customer of the bootstrapped profiles, a 50-minute delay. In the same run:
- a first pass of previews, while each situation is decided by the engine once
  (offers/preview.py);
- most requests per second with wrk at 64 connections: `GET /healthz` (the trivial
  endpoint: same app, same middleware, no work) and `POST /v1/decisions/preview`, and
  their ratio;
- latency of the preview at a fixed rate (open loop, bench/openloop.py: requests leave on
  schedule whether or not earlier ones came back), p50 and p99.

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

_LUA = """
local ids = {{{ids}}}
local n = 0
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer {key}"
request = function()
  n = n + 1
  local body = string.gsub([[{body}]], "CUSTOMER", ids[n % #ids + 1])
  return wrk.format(nil, nil, nil, body)
end
"""


def _wrk(url: str, seconds: int, script: Path | None = None) -> tuple[float, int]:
    """(requests/s, non-2xx responses) at 64 connections on one thread."""
    cmd = ["wrk", "-t1", "-c64", f"-d{seconds}s", "--latency", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, int(bad.group(1)) if bad else 0


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
        cold, _ = _wrk(preview_url, seconds, script)
        print(
            f"  first pass (every situation decided once by the engine): {cold:.0f} requests/s "
            f"over {time.perf_counter() - started:.0f} s"
        )
        _wrk(f"{base}/healthz", 2)  # warm up
        trivial, _ = _wrk(f"{base}/healthz", seconds)
        preview, bad = _wrk(preview_url, seconds, script)
        print(f"  wrk at 64 connections for {seconds} s:")
        print(f"  GET /healthz (trivial)            {trivial:8.0f} requests/s")
        print(
            f"  POST /v1/decisions/preview        {preview:8.0f} requests/s   "
            f"({preview / trivial:.1%} of the trivial endpoint; {bad} non-2xx)"
        )
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
