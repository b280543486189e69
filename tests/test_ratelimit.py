"""Per-key rate limits hold in total, however many workers or servers share a data folder."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.http import ratelimit
from api.http.ratelimit import RateLimiter
from offers.ledger.db import create_engine, upgrade
from tests.conftest import postgres_schema
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


def test_a_key_whose_slot_another_key_took_starts_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker remembers where its keys' buckets are; when another worker's key has taken
    that slot since (a full table reuses the stalest), the key starts full, never with the
    other key's count."""
    monkeypatch.setattr(ratelimit, "SLOTS", 1)
    monkeypatch.setattr(ratelimit, "PROBE", 1)
    table = tmp_path / ".ratelimit"
    a, b = RateLimiter(1.0, 1, table), RateLimiter(1.0, 1, table)
    assert a.allow("k1", now=10.0) and not a.allow("k1", now=10.0)
    assert b.allow("k2", now=10.0) and not b.allow("k2", now=10.0)  # k1's slot, now k2's
    assert a.allow("k1", now=10.0)


@pytest.mark.postgres
def test_limiters_on_one_postgresql_share_every_keys_bucket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two limiters on one PostgreSQL stand for two hosts: together they get one rate, and the
    database's clock refills it."""
    with postgres_schema() as url:
        one, two = create_engine(url), create_engine(url)
        upgrade(one)
        a = RateLimiter(0.001, 4, database=one)
        b = RateLimiter(0.001, 4, database=two)
        assert [limiter.allow("k1") for limiter in (a, b, a, b, a, b)] == [True] * 4 + [False] * 2
        assert b.allow("k2")  # per key
        assert a.exhausted("k1") and not a.exhausted("k2") and not b.exhausted("never")
        other = RateLimiter(0.001, 4, database=one, scope="wrong-secret-key")
        assert other.allow("k1")  # per kind of limit
        with one.begin() as conn:  # as if the last take was 2,000 s ago: 2 tokens back
            conn.execute(sa.text("UPDATE rate_buckets SET at = at - 2000 WHERE subject = 'k1'"))
        assert [b.allow("k1") for _ in range(3)] == [True, True, False]
        monkeypatch.setattr(ratelimit._DatabaseBuckets, "SWEEP_EVERY", -1.0)
        with one.begin() as conn:  # k2's bucket is full again after 4,000 s
            conn.execute(sa.text("UPDATE rate_buckets SET at = at - 4001 WHERE subject = 'k2'"))
        assert a.allow("k3")  # the take that sweeps
        with one.connect() as conn:
            left = conn.execute(sa.text("SELECT scope, subject FROM rate_buckets")).all()
        assert sorted(tuple(r) for r in left) == [
            ("request", "k1"),
            ("request", "k3"),
            ("wrong-secret-key", "k1"),
        ]
        with one.connect() as conn:  # a take waits for no WAL flush
            persistence = "SELECT relpersistence FROM pg_class WHERE oid = 'rate_buckets'::regclass"
            assert conn.execute(sa.text(persistence)).scalar_one() == "u"
        one.dispose()
        two.dispose()


def _tokens(engine: sa.Engine, subject: str) -> float:
    with engine.connect() as conn:
        query = sa.text("SELECT tokens FROM rate_buckets WHERE subject = :s")
        return float(conn.execute(query, {"s": subject}).scalar_one())


@pytest.mark.postgres
def test_a_busy_key_leases_tokens_and_two_hosts_never_pass_the_limit() -> None:
    """At hundreds of requests a second a key's tokens are taken a lease at a time, a
    statement per lease instead of one per request; two hosts leasing from one bucket
    still accept no more than the burst and what the rate brought meanwhile."""
    with postgres_schema() as url:
        one, two = create_engine(url), create_engine(url)
        upgrade(one)
        rate, burst = 400.0, 400.0
        a = RateLimiter(rate, burst, database=one)
        b = RateLimiter(rate, burst, database=two)
        assert a._database is not None and a._database.lease == 20
        takes = 0
        real = a._database._take

        def counted(**params: object) -> list[tuple[object, ...]]:
            nonlocal takes
            takes += 1
            return real(**params)

        a._database._take = counted  # type: ignore[assignment,method-assign]
        assert all(a.allow("busy") for _ in range(100))
        assert takes <= 25  # 5 leases of 20; 100 statements without them
        start = time.monotonic()
        accepted = sum(limiter.allow("shared") for _ in range(600) for limiter in (a, b))
        elapsed = time.monotonic() - start
        assert burst - 2 * a._database.lease <= accepted <= burst + rate * elapsed + 1
        one.dispose()
        two.dispose()


@pytest.mark.postgres
def test_tokens_a_lease_did_not_spend_go_back_to_the_bucket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with postgres_schema() as url:
        engine = create_engine(url)
        upgrade(engine)
        monkeypatch.setattr(ratelimit._DatabaseBuckets, "LEASE_SECONDS", 100.0)
        limiter = RateLimiter(1.0, 800, database=engine)  # a lease of 100 tokens
        monkeypatch.setattr(ratelimit._DatabaseBuckets, "LEASE_SECONDS", 0.0)  # spent at once
        assert limiter.allow("k")
        assert _tokens(engine, "k") == pytest.approx(700, abs=0.5)  # one spent, 99 leased
        assert limiter.allow("k")  # the 99 back, a new lease of 100 out
        assert _tokens(engine, "k") == pytest.approx(699, abs=0.5)
        engine.dispose()


def answers_by_worker(metrics: Path, path: str) -> dict[str, dict[str, int]]:
    """Per worker, how many requests to `path` it answered with each status, from its
    Prometheus multiprocess file."""
    from prometheus_client.mmap_dict import MmapedDict

    counts: dict[str, dict[str, int]] = {}
    for db in metrics.glob("counter_*.db"):
        pid = db.stem.rsplit("_", 1)[-1]
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(db)):
            labels = json.loads(key)[2]
            if labels.get("path") == path:
                mine = counts.setdefault(pid, {})
                mine[labels["status_code"]] = mine.get(labels["status_code"], 0) + int(value)
    return counts


def test_two_workers_accept_one_rate_per_key_in_total(tmp_path: Path) -> None:
    rate, burst, each = 1.0, 30, 10
    env = {
        **os.environ,
        "MAKEGOOD_DATA": str(tmp_path / "data"),
        "MAKEGOOD_RATE": str(rate),
        "MAKEGOOD_RATE_BURST": str(burst),
    }
    env.pop("MAKEGOOD_DATABASE_URL", None)
    server, base = start(env, tmp_path / "server.log", workers=2)
    metrics = tmp_path / "data" / ".prometheus"
    codes: list[int] = []
    try:
        key = (tmp_path / "data" / "local-admin.key").read_text().strip()
        began = time.monotonic()
        # rounds until each worker has answered a few (the kernel picks who accepts): with
        # buckets of its own, the second one would let `each` more through
        with ThreadPoolExecutor(max_workers=12) as pool:  # a new connection per request
            for _round in range(30):
                codes += pool.map(lambda _: call("GET", f"{base}/v1/perks", key)[0], range(60))
                answered = answers_by_worker(metrics, "/v1/perks").values()
                if len(answered) == 2 and all(sum(a.values()) >= each for a in answered):
                    break
        elapsed = time.monotonic() - began
    finally:
        server.terminate()
        server.wait(timeout=30)
    by_worker = answers_by_worker(metrics, "/v1/perks")  # all counted now
    assert len(by_worker) == 2, by_worker
    assert all(sum(a.values()) >= each for a in by_worker.values()), by_worker
    accepted = codes.count(200)
    assert set(codes) == {200, 429}, codes
    assert sum(a.get("200", 0) for a in by_worker.values()) == accepted
    assert burst <= accepted <= burst + rate * elapsed + 2, (accepted, elapsed, by_worker)
