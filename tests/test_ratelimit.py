"""Per-key rate limits hold in total, however many workers or servers share a data folder."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from api.ratelimit import RateLimiter
from tests.servers import call, start


def test_limiters_on_one_file_share_every_keys_bucket(tmp_path: Path) -> None:
    """Two limiters on one file stand for two worker processes: together they get one rate."""
    table = tmp_path / ".ratelimit"
    a, b = RateLimiter(2.0, 4, table), RateLimiter(2.0, 4, table)
    taken = [limiter.allow("k1", now=100.0) for limiter in (a, b, a, b, a, b)]
    assert taken == [True, True, True, True, False, False]
    assert b.allow("k2", now=100.0)  # per key
    assert a.allow("k1", now=100.5) and not b.allow("k1", now=100.5)  # 2 per second
    assert RateLimiter(2.0, 4, table).allow("k1", now=101.0)  # a restarted worker too


def test_a_bucket_from_before_a_reboot_starts_full(tmp_path: Path) -> None:
    table = tmp_path / ".ratelimit"
    first = RateLimiter(1.0, 2, table)
    assert first.allow("k", now=5_000.0) and first.allow("k", now=5_000.0)
    assert not first.allow("k", now=5_000.0)
    assert RateLimiter(1.0, 2, table).allow("k", now=3.0)  # the monotonic clock restarted


def test_many_keys_fit_and_each_keeps_its_own_count(tmp_path: Path) -> None:
    limiter = RateLimiter(1.0, 1, tmp_path / ".ratelimit")
    keys = [f"key-{i}" for i in range(1_000)]
    assert all(limiter.allow(k, now=10.0) for k in keys)
    assert not any(limiter.allow(k, now=10.0) for k in keys)


def accepted_by_worker(metrics: Path, path: str) -> dict[str, int]:
    """Requests to `path` each worker answered 200, from its Prometheus multiprocess file."""
    from prometheus_client.mmap_dict import MmapedDict

    counts: dict[str, int] = {}
    for db in metrics.glob("counter_*.db"):
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(db)):
            labels = json.loads(key)[2]
            if labels.get("path") == path and labels.get("status_code") == "200":
                pid = db.stem.rsplit("_", 1)[-1]
                counts[pid] = counts.get(pid, 0) + int(value)
    return counts


def test_two_workers_accept_one_rate_per_key_in_total(tmp_path: Path) -> None:
    rate, burst = 1.0, 30
    env = {
        **os.environ,
        "MAKEGOOD_DATA": str(tmp_path / "data"),
        "MAKEGOOD_RATE": str(rate),
        "MAKEGOOD_RATE_BURST": str(burst),
    }
    env.pop("MAKEGOOD_DATABASE_URL", None)
    server, base = start(env, tmp_path / "server.log", workers=2)
    codes: list[int] = []
    try:
        key = (tmp_path / "data" / "local-admin.key").read_text().strip()
        began = time.monotonic()
        # rounds until both workers have let requests through (the kernel picks who accepts)
        with ThreadPoolExecutor(max_workers=12) as pool:  # a new connection per request
            for _round in range(15):
                codes += pool.map(lambda _: call("GET", f"{base}/v1/perks", key)[0], range(60))
                by_worker = accepted_by_worker(tmp_path / "data" / ".prometheus", "/v1/perks")
                if len(by_worker) >= 2:
                    break
        elapsed = time.monotonic() - began
    finally:
        server.terminate()
        server.wait(timeout=30)
    by_worker = accepted_by_worker(tmp_path / "data" / ".prometheus", "/v1/perks")  # all counted
    assert len(by_worker) == 2, by_worker  # both workers answered, from one bucket
    accepted = codes.count(200)
    assert set(codes) == {200, 429}, codes
    assert sum(by_worker.values()) == accepted
    assert burst <= accepted <= burst + rate * elapsed + 2, (accepted, elapsed, by_worker)
