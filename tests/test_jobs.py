"""Large incidents run as background jobs: polled to completion, exactly once."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from api.http.background import start_incident_job
from api.runtime import Runtime
from api.settings import Settings
from offers.catalog.tables import DEFAULTS
from offers.incidents.kinds import FlightFacts, Incident
from offers.ledger import jobs
from offers.ledger.store import Ledger
from offers.ledger.versions import publish_table
from offers.messages.book import load_default_book
from segmentation.book import ProfileBook
from segmentation.model import Segmentation
from segmentation.synth import synth_profiles

N = 200_000


@pytest.fixture(scope="module")
def crowd() -> pl.DataFrame:
    return synth_profiles(N, 11).drop("latent_kind")


@pytest.fixture
def big_runtime(
    ledger: Ledger, model: Segmentation, crowd: pl.DataFrame, tmp_path: Path
) -> Runtime:
    body = (DEFAULTS / "offers.toml").read_text(encoding="utf-8")
    publish_table(ledger, "flight-delay", body, "tests", "default", datetime.now(UTC))
    rt = Runtime(
        settings=Settings(data_dir=tmp_path, sync_limit=1_000),
        engine=ledger.engine,
        ledger=ledger,
        model=model,
        book=ProfileBook(crowd, model),
        messages=load_default_book(),
    )
    rt.reload_table()
    return rt


def _wait(runtime: Runtime, job_id: str, timeout: float = 240.0) -> jobs.Job:
    deadline = time.monotonic() + timeout
    seen = set()
    while True:
        job = jobs.get(runtime.ledger, job_id)
        assert job is not None
        seen.add(job.status)
        if job.status in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, f"job stuck: {job}"
        time.sleep(0.2)


def test_a_200k_customer_incident_through_the_job_path(big_runtime: Runtime) -> None:
    ids = big_runtime.book.frame["customer_id"].to_list()
    incident = Incident(
        incident_id="BIG-1",
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 23, 7, tzinfo=UTC),
        facts=FlightFacts(delay_minutes=50, flight="MG1"),
    )
    job = _wait(big_runtime, start_incident_job(big_runtime, incident, ids, None))
    assert job.status == "done", job.message
    assert job.result is not None and job.result["issued"] == N
    assert job.result["decisions_url"] == "/v1/incidents/BIG-1/decisions?step=2"
    assert big_runtime.ledger.count("BIG-1") == N
    # resubmitting the same update completes with nothing new and nothing missing
    again = _wait(big_runtime, start_incident_job(big_runtime, incident, ids, None))
    assert again.status == "done" and again.result is not None and again.result["issued"] == 0
    page = big_runtime.ledger.decisions("BIG-1", step=2, limit=5)
    assert page.height == 5 and page["text"].null_count() == 0
    summary = big_runtime.ledger.summary("BIG-1")
    assert summary["decisions"].to_list() == [N]


def test_a_failing_job_says_why(big_runtime: Runtime) -> None:
    incident = Incident(
        incident_id="BIG-2",
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 23, 7, tzinfo=UTC),
        facts=FlightFacts(delay_minutes=50, flight="MG1"),
    )
    job = _wait(big_runtime, start_incident_job(big_runtime, incident, ["nobody"], None))
    assert job.status == "failed" and "nobody" in job.message
    assert big_runtime.ledger.incident("BIG-2") is None
