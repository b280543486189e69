"""Customers who objected to profiling never shape a segmentation, on any training path.

The objectors here are extreme outliers: had they been learned from, they would pull a
centroid (or take a cluster) of their own, so equal centroids prove they were left out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from api.app import create_app
from api.cli import cli
from api.runtime import Runtime
from segmentation.drift import measure_drift
from segmentation.model import ModelCard, Segmentation, train
from segmentation.registry import Registry
from segmentation.report import render_report
from tests.test_segments_http import _train

OBJECTORS = 60


def _with_objectors(population: pl.DataFrame, objects: pl.Expr | bool = True) -> pl.DataFrame:
    """The population plus 60 wildly unusual customers, flagged as objectors by default."""
    plain = population.drop("latent_kind")
    outliers = plain.head(OBJECTORS).with_columns(
        customer_id=pl.format("x{}", pl.int_range(OBJECTORS)),
        trips_12m=pl.lit(900, pl.Int32),
        spend_12m=pl.lit(5e6),
        lounge_visits_12m=pl.lit(700, pl.Int32),
        duty_free_spend_12m=pl.lit(9e5),
    )
    frame = pl.concat([plain, outliers])
    flag = pl.col("customer_id").str.starts_with("x") if objects is True else pl.lit(objects)
    return frame.with_columns(objects_to_profiling=flag)


@pytest.fixture(scope="module")
def reference(population: pl.DataFrame) -> ModelCard:
    """What training on the consenting customers alone learns."""
    return train(population.drop("latent_kind"), version="ref", k=5, seed=7).card


def _assert_learned_without_objectors(card: ModelCard, reference: ModelCard) -> None:
    assert card.rows == reference.rows and card.objectors == OBJECTORS
    assert sum(s.size for s in card.segments) == reference.rows
    assert [(s.name, s.size) for s in card.segments] == [
        (s.name, s.size) for s in reference.segments
    ]
    for mine, theirs in zip(card.segments, reference.segments, strict=True):
        assert mine.zscores == pytest.approx(theirs.zscores, abs=1e-3)
    assert [b.edges for b in card.baseline] == [b.edges for b in reference.baseline]


def test_a_frame_with_objectors_trains_as_if_they_were_absent(
    population: pl.DataFrame, reference: ModelCard
) -> None:
    card = train(_with_objectors(population), version="a", k=5, seed=7).card
    _assert_learned_without_objectors(card, reference)
    # the same customers without an objection would have taken a segment of their own
    consenting = train(_with_objectors(population, False), version="b", k=5, seed=7).card
    assert consenting.rows == reference.rows + OBJECTORS and consenting.objectors == 0
    assert OBJECTORS in [s.size for s in consenting.segments]
    assert {s.name for s in consenting.segments} != {s.name for s in reference.segments}


def test_objections_imported_as_text_count_too(
    population: pl.DataFrame, reference: ModelCard
) -> None:
    """CSV and Excel imports keep extra columns as text."""
    frame = _with_objectors(population)
    texts = frame.with_columns(
        objects_to_profiling=pl.when(pl.col("objects_to_profiling"))
        .then(pl.lit(" Yes"))
        .otherwise(pl.lit(None, pl.String))
    )
    _assert_learned_without_objectors(train(texts, version="t", k=5, seed=7).card, reference)


def test_cli_training_on_a_snapshot_leaves_objectors_out(
    tmp_path: Path, population: pl.DataFrame, reference: ModelCard
) -> None:
    snapshot = tmp_path / "snapshot.parquet"
    _with_objectors(population).write_parquet(snapshot)
    data = tmp_path / "data"
    args = ["--data", str(data), "segments", "train", "--profiles", str(snapshot), "--k", "5"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"left out {OBJECTORS} customers who objected to profiling" in result.output
    card = Registry(data / "models").card("seg-0001")
    _assert_learned_without_objectors(card, reference)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_http_training_leaves_objectors_out_and_drift_ignores_them(
    runtime: Runtime,
    population: pl.DataFrame,
    admin_headers: dict[str, str],
    reference: ModelCard,
) -> None:
    profiles = runtime.settings.data_dir / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    snapshot = profiles / "snapshot-0001.parquet"
    _with_objectors(population).write_parquet(snapshot)
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        job = _train(client, {"k": 5, "seed": 7})
        assert job["status"] == "succeeded", job
        card: dict[str, Any] = client.get(f"/v1/segmentations/{job['version']}").json()["card"]
    assert card["rows"] == reference.rows and card["objectors"] == OBJECTORS
    model: Segmentation = Registry(runtime.settings.data_dir / "models").load(job["version"])
    _assert_learned_without_objectors(model.card, reference)
    # drift over the same snapshot: the objectors are not measured, so nothing has moved
    report = measure_drift(model, snapshot)
    assert report.rows == reference.rows and not report.flagged


def test_the_segment_report_neither_draws_nor_counts_objectors(
    model: Segmentation, population: pl.DataFrame
) -> None:
    def page(profiles: pl.DataFrame) -> str:
        html = render_report(model, profiles, points=500)
        return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "", html)

    assert page(_with_objectors(population)) == page(population.drop("latent_kind"))
