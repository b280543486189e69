"""Shared real parts: a small synthetic population, one trained model, real databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from api.runtime import Runtime
from api.settings import Settings
from offers.catalog.tables import DEFAULTS
from offers.ledger.db import create_engine, upgrade
from offers.ledger.store import Ledger
from offers.ledger.versions import publish_table
from offers.messages.book import load_default_book
from segmentation.book import ProfileBook
from segmentation.model import Segmentation, train
from segmentation.synth import synth_profiles

POSTGRES_URL = os.environ.get(
    "MAKEGOOD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def population() -> pl.DataFrame:
    return synth_profiles(3_000, 7)


@pytest.fixture(scope="session")
def model(population: pl.DataFrame) -> Segmentation:
    return train(population.drop("latent_kind"), version="seg-0001", k=5, seed=7)


def _postgres_available() -> bool:
    try:
        engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database: an SQLite file, or a new schema in the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'makegood.db'}"
        return
    with postgres_schema() as url:
        yield url


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL to a new, empty schema in the real PostgreSQL, dropped afterwards.

    Fails under CI when PostgreSQL is down (`.ci/run` starts it); skips elsewhere.
    """
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {POSTGRES_URL}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    engine = create_engine(db_url)
    upgrade(engine)
    yield Ledger(engine)
    engine.dispose()


@pytest.fixture
def runtime(
    ledger: Ledger, model: Segmentation, population: pl.DataFrame, tmp_path: Path
) -> Runtime:
    """A live runtime over real parts, with the default offer table published."""
    body = (DEFAULTS / "offers.toml").read_text(encoding="utf-8")
    publish_table(ledger, "flight-delay", body, "tests", "default", datetime.now(UTC))
    rt = Runtime(
        settings=Settings(data_dir=tmp_path),
        engine=ledger.engine,
        ledger=ledger,
        model=model,
        book=ProfileBook(population.drop("latent_kind"), model),
        messages=load_default_book(),
    )
    rt.reload_table()
    return rt


@pytest.fixture
def admin_headers(runtime: Runtime) -> dict[str, str]:
    """Headers carrying a real admin key, created in the test database like any key."""
    from api.keys import KeyStore

    _info, key = KeyStore(runtime.engine).create("tests-admin", "admin", datetime.now(UTC))
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One SparkSession on `local[2]` for the whole run, small shuffles (the `spark` extra).

    Skips with the reason when pyspark or Java 17+ is missing; under CI (`.ci/run` installs
    both) that is a failure instead, so a green run cannot hide a missing install step.
    """
    from segmentation.spark import SparkUnavailable, spark_session

    try:
        session = spark_session("local[2]", **{"spark.sql.shuffle.partitions": "4"})
    except SparkUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    yield session
    session.stop()
