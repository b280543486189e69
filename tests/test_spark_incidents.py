"""`incidents apply --engine spark`: a 100,000-customer incident decided per partition.

Budget, stock per airport and day, caps from the ledger's history and the holdout all bite,
and every decision equals the local engine's (perk codes aside: they are drawn at record
time); a replayed update writes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from api.runtime import Runtime
from api.settings import Settings
from offers.catalog.tables import DEFAULTS
from offers.decide import ContactPolicy
from offers.flow import Parts, UnknownCustomers, apply_update
from offers.incidents.kinds import FlightFacts, Incident
from offers.ledger.db import create_engine, upgrade
from offers.ledger.store import Ledger
from offers.ledger.versions import publish_table
from offers.messages.book import load_default_book
from offers.spark_flow import SparkProfiles, apply_on_spark
from segmentation.book import ProfileBook
from segmentation.model import Segmentation
from segmentation.synth import synth_profiles, write_profiles

ROWS = 100_000
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
CODES = ["perk_code", "text"]  # the text carries the code


def _incident(incident_id: str, delay: int) -> Incident:
    return Incident(
        incident_id=incident_id,
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 23, 5, 0, tzinfo=UTC),
        facts=FlightFacts(delay_minutes=delay, flight="MG123", origin="TPE"),
    )


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, Path]:
    frame = synth_profiles(ROWS, 5).drop("latent_kind")
    path = tmp_path_factory.mktemp("incident") / "profiles.parquet"
    write_profiles(frame, path)
    return frame, path


def _parts(tmp: Path, frame: pl.DataFrame, model: Segmentation, url: str | None = None) -> Parts:
    """A data folder with the default table, seat upgrades stocked at TPE, caps of one perk
    (its SQLite ledger, or the database at `url`)."""
    engine = create_engine(url or f"sqlite:///{tmp / 'makegood.db'}")
    upgrade(engine)
    ledger = Ledger(engine)
    body = (
        (DEFAULTS / "offers.toml")
        .read_text(encoding="utf-8")
        .replace(
            'id = "upgrade-seat"\n',
            'id = "upgrade-seat"\nstock = [{ airport = "TPE", per_day = 5000 }]\n',
        )
    )
    publish_table(ledger, "flight-delay", body, "tests", "stock", NOW)
    rt = Runtime(
        settings=Settings(data_dir=tmp),
        engine=engine,
        ledger=ledger,
        model=model,
        book=ProfileBook(frame, model),
        messages=load_default_book(),
    )
    rt.reload_table()
    return replace(rt.parts(), contact=ContactPolicy(holdout_share=0.1, max_perks=1))


def _comparable(frame: pl.DataFrame) -> pl.DataFrame:
    enums = [n for n, t in frame.schema.items() if isinstance(t, pl.Enum)]
    return frame.drop(CODES).with_columns(pl.col(enums).cast(pl.String)).sort("customer_id")


def test_a_huge_incident_on_spark_decides_as_the_local_engine(
    spark: Any, crowd: tuple[pl.DataFrame, Path], model: Segmentation, tmp_path: Path
) -> None:
    frame, path = crowd
    ids = frame["customer_id"].to_list()
    (tmp_path / "here").mkdir()
    (tmp_path / "there").mkdir()
    here = _parts(tmp_path / "here", frame, model)
    there = _parts(tmp_path / "there", frame, model)
    earlier = ids[::50]  # 2,000 customers who got a perk in another incident: capped now
    for parts in (here, there):
        apply_update(parts, _incident("TPE-0", 60), earlier, NOW)
    profiles = SparkProfiles(
        frame=spark.read.parquet(str(path)),
        schema=pl.scan_parquet(path).collect_schema(),
        model=model,
    )
    budget = 250_000.0
    local = apply_update(here, _incident("TPE-1", 60), ids, NOW, budget=budget)
    remote = apply_on_spark(
        spark, there, profiles, _incident("TPE-1", 60), None, NOW, budget=budget
    )
    assert remote.issued == local.issued == ROWS
    got, want = remote.decisions, local.decisions
    reasons = want["reasons"].str.json_decode().list.join(" ")
    assert want.filter(pl.col("holdout")).height > 5_000
    assert reasons.str.contains("budget:").sum() > 1_000
    assert reasons.str.contains("stock: no upgrade-seat left at TPE").sum() > 1_000
    assert want.filter(pl.col("needs_human")).height == len(earlier)
    assert 0 < want.filter(pl.col("perk_id") == "upgrade-seat").height <= 5_000
    assert _comparable(got).equals(_comparable(want))
    assert remote.cost == pytest.approx(local.cost) and local.cost <= budget

    again = apply_on_spark(spark, there, profiles, _incident("TPE-1", 60), None, NOW)
    assert again.issued == 0
    assert there.ledger.count("TPE-1") == ROWS

    # a listed few (joined with the dataset on Spark): the same answers as well
    few = ids[1::40]
    local = apply_update(here, _incident("TPE-2", 60), few, NOW)
    remote = apply_on_spark(spark, there, profiles, _incident("TPE-2", 60), few, NOW)
    assert remote.issued == local.issued == len(few)
    assert _comparable(remote.decisions).equals(_comparable(local.decisions))
    with pytest.raises(UnknownCustomers):
        apply_on_spark(spark, there, profiles, _incident("TPE-3", 60), [*few, "nobody"], NOW)


def test_cli_applies_an_incident_for_everyone_on_spark(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`incidents apply --engine spark --everyone` over the data folder's snapshot decides
    as `incidents apply` listing every customer does, and a replay issues nothing.
    (Learning's explorers draw with a seed, so two processes draw alike.)"""
    import json

    from click.testing import CliRunner

    from api.cli import cli

    monkeypatch.setenv("MAKEGOOD_SEED", "11")
    runner = CliRunner()
    here, there = tmp_path / "here", tmp_path / "there"
    body = {
        "kind": "flight_delay",
        "incident_id": "MG9-2026-12-06",
        "occurred_at": "2026-12-06T05:00:00Z",
        "facts": {"delay_minutes": 70, "flight": "MG9"},
        "customers": ["c0000001"],
        "budget": 20000,
    }
    there_file = tmp_path / "there.json"
    there_file.write_text(json.dumps(body))
    base = ["incidents", "apply", "--format", "parquet"]
    result = runner.invoke(
        cli,
        [
            "--data",
            str(there),
            *base,
            str(there_file),
            "-o",
            str(tmp_path / "there.parquet"),
            "--engine",
            "spark",
            "--spark-master",
            "local[2]",
            "--everyone",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "10,000 new decisions" in result.output
    snapshot = sorted((there / "profiles").glob("snapshot-*.parquet"))[-1]
    body["customers"] = pl.read_parquet(snapshot)["customer_id"].to_list()
    here_file = tmp_path / "here.json"
    here_file.write_text(json.dumps(body))
    local = runner.invoke(
        cli, ["--data", str(here), *base, str(here_file), "-o", str(tmp_path / "here.parquet")]
    )
    assert local.exit_code == 0, local.output
    got = pl.read_parquet(tmp_path / "there.parquet")
    want = pl.read_parquet(tmp_path / "here.parquet")
    assert _comparable(got).equals(_comparable(want))
    again = runner.invoke(
        cli,
        [
            "--data",
            str(there),
            *base,
            str(there_file),
            "-o",
            str(tmp_path / "again.parquet"),
            "--engine",
            "spark",
            "--spark-master",
            "local[2]",
            "--everyone",
        ],
    )
    assert again.exit_code == 0, again.output
    assert "0 new decisions" in again.output


def test_recorded_once_on_each_database(
    spark: Any, db_url: str, population: pl.DataFrame, model: Segmentation, tmp_path: Path
) -> None:
    """SQLite and the real PostgreSQL: the driver records under the incident's lock, once."""
    frame = population.drop("latent_kind")
    path = tmp_path / "profiles.parquet"
    write_profiles(frame, path)
    (tmp_path / "here").mkdir()
    here = _parts(tmp_path / "here", frame, model)
    there = _parts(tmp_path, frame, model, db_url)
    profiles = SparkProfiles(
        frame=spark.read.parquet(str(path)),
        schema=pl.scan_parquet(path).collect_schema(),
        model=model,
    )
    try:
        for delay in (40, 100):  # a second step: upgrades and updates from the history
            local = apply_update(here, _incident("TPE-7", delay), frame["customer_id"], NOW)
            remote = apply_on_spark(spark, there, profiles, _incident("TPE-7", delay), None, NOW)
            assert remote.issued == local.issued == frame.height
            assert _comparable(remote.decisions).equals(_comparable(local.decisions))
            again = apply_on_spark(spark, there, profiles, _incident("TPE-7", delay), None, NOW)
            assert again.issued == 0
        assert there.ledger.count("TPE-7") == 2 * frame.height
    finally:
        here.ledger.engine.dispose()
        there.ledger.engine.dispose()


def _staged_tables(parts: Parts) -> int:
    with parts.ledger.engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_tables "
                "WHERE schemaname = current_schema() AND starts_with(tablename, 'staged')"
            ).scalar_one()
        )


@pytest.mark.postgres
def test_executors_write_postgresql_as_the_driver_does(
    spark: Any, population: pl.DataFrame, model: Segmentation, tmp_path: Path
) -> None:
    """Each partition copies its decisions into staging tables and one insert-select under
    the lock records them: the ledger then holds what the driver writes for the same
    incident (decisions, wordings, follow-ups), and a replay writes nothing."""
    from tests.conftest import postgres_schema

    frame = population.drop("latent_kind")
    path = tmp_path / "profiles.parquet"
    write_profiles(frame, path)
    profiles = SparkProfiles(
        frame=spark.read.parquet(str(path)),
        schema=pl.scan_parquet(path).collect_schema(),
        model=model,
    )
    ids = frame["customer_id"].to_list()
    with postgres_schema() as driver_url, postgres_schema() as executors_url:
        here = _parts(tmp_path, frame, model, driver_url)
        there = _parts(tmp_path, frame, model, executors_url)
        try:
            for delay in (40, 100):
                incident = _incident("TPE-8", delay)
                local = apply_update(here, incident, ids, NOW, budget=3e3)
                remote = apply_on_spark(spark, there, profiles, incident, None, NOW, budget=3e3)
                assert remote.issued == local.issued == frame.height
                assert remote.spent == pytest.approx(local.spent)
                want = here.ledger.decisions("TPE-8", step=local.step)
                got = there.ledger.decisions("TPE-8", step=remote.step)
                if delay == 40:  # apologies: check-in and feedback follow-ups
                    assert got["followups"].list.len().sum() > 1_000
                assert _comparable(got).equals(_comparable(want))
                assert _staged_tables(there) == 0
            again = apply_on_spark(spark, there, profiles, _incident("TPE-8", 100), None, NOW)
            assert again.issued == 0 and there.ledger.count("TPE-8") == 2 * frame.height
        finally:
            here.ledger.engine.dispose()
            there.ledger.engine.dispose()


@pytest.mark.postgres
def test_a_failed_executor_write_leaves_nothing_half_written(
    spark: Any, population: pl.DataFrame, model: Segmentation, tmp_path: Path
) -> None:
    """One partition cannot be copied (a customer id longer than the ledger keeps): the
    partitions that were written are never recorded, and their staging tables go."""
    from tests.conftest import postgres_schema

    frame = population.drop("latent_kind").with_columns(
        customer_id=pl.when(pl.int_range(pl.len()) == 2_500)
        .then(pl.lit("x" * 80))
        .otherwise(pl.col("customer_id"))
    )
    path = tmp_path / "profiles.parquet"
    write_profiles(frame, path)
    profiles = SparkProfiles(
        frame=spark.read.parquet(str(path)).repartition(4),
        schema=pl.scan_parquet(path).collect_schema(),
        model=model,
    )
    with postgres_schema() as url:
        there = _parts(tmp_path, frame, model, url)
        try:
            with pytest.raises(Exception, match="value too long"):
                apply_on_spark(spark, there, profiles, _incident("TPE-9", 60), None, NOW)
            assert there.ledger.count("TPE-9") == 0
            assert there.ledger.incident("TPE-9") is None
            assert _staged_tables(there) == 0
        finally:
            there.ledger.engine.dispose()
