"""`segments train --engine spark`: a Spark sample, scikit-learn's fit, executors' labels.

Labels on 100,000 profiles equal the local path's for the same model; the card, skops file
and registry entry are those of a local training; objectors are left out as locally.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from api.cli import cli
from segmentation.model import Segmentation, train
from segmentation.registry import Registry
from segmentation.spark_segments import assign_on_spark, read_profiles, train_on_spark
from segmentation.synth import synth_profiles, write_profiles

ROWS = 100_000
OBJECTORS = 40


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, Path]:
    """100,000 synthetic profiles (40 of them objectors) as a Parquet file."""
    frame = synth_profiles(ROWS, 11).drop("latent_kind")
    frame = frame.with_columns(
        objects_to_profiling=pl.int_range(pl.len()) % (ROWS // OBJECTORS) == 0
    )
    path = tmp_path_factory.mktemp("spark-profiles") / "profiles.parquet"
    write_profiles(frame, path)
    return frame, path


@pytest.fixture(scope="module")
def spark_model(spark: Any, profiles: tuple[pl.DataFrame, Path]) -> Segmentation:
    return train_on_spark(spark, [profiles[1]], version="seg-0001", k=5, sample_rows=30_000)


def test_executors_label_every_customer_as_the_local_path(
    spark: Any, profiles: tuple[pl.DataFrame, Path], spark_model: Segmentation
) -> None:
    frame, path = profiles
    assigned = assign_on_spark(spark, read_profiles(spark, [path]), spark_model)
    got = pl.from_arrow(assigned.select("customer_id", "segment").toArrow())
    assert isinstance(got, pl.DataFrame)
    want = spark_model.assign(frame).select("customer_id", "segment")
    assert got.height == ROWS
    assert got.sort("customer_id").equals(want.sort("customer_id"))
    assert want["segment"].n_unique() == 6  # five segments and the objectors' "unsegmented"


def test_card_counts_every_profile_and_sizes_segments_by_the_executors(
    profiles: tuple[pl.DataFrame, Path], spark_model: Segmentation
) -> None:
    frame, _ = profiles
    card = spark_model.card
    assert (card.rows, card.objectors) == (ROWS - OBJECTORS, OBJECTORS)
    assert 29_000 < card.sample_rows < 31_000  # the local size rule: about 30,000
    kept = frame.filter(~pl.col("objects_to_profiling"))
    local = np.bincount(spark_model.predict_frame(kept), minlength=card.k)
    assert [s.size for s in sorted(card.segments, key=lambda s: s.cluster)] == local.tolist()


def test_the_fit_is_the_local_fit_of_the_same_sample(
    spark: Any, profiles: tuple[pl.DataFrame, Path], spark_model: Segmentation
) -> None:
    """scikit-learn runs on the driver exactly as locally: same sample, same centroids."""
    from pyspark.sql import functions as F

    _, path = profiles
    data = read_profiles(spark, [path]).where(~F.col("objects_to_profiling"))
    keep = F.pmod(F.xxhash64("customer_id", F.lit(7)), F.lit(ROWS - OBJECTORS)) < 30_000
    sample = pl.from_arrow(data.where(keep).toArrow())
    assert isinstance(sample, pl.DataFrame)
    local = train(sample, version="seg-0001", k=5, spec=spark_model.card.spec)
    np.testing.assert_array_equal(
        local.pipeline[-1].cluster_centers_, spark_model.pipeline[-1].cluster_centers_
    )
    assert [s.name for s in local.card.segments] == [s.name for s in spark_model.card.segments]


def test_cli_trains_on_spark_into_the_registry(
    spark: Any, profiles: tuple[pl.DataFrame, Path], tmp_path: Path
) -> None:
    _, path = profiles
    out = tmp_path / "assigned"
    result = CliRunner().invoke(
        cli,
        [
            "--data",
            str(tmp_path / "d"),
            "segments",
            "train",
            "--profiles",
            str(path),
            "--k",
            "4",
            "--engine",
            "spark",
            "--spark-master",
            "local[2]",
            "--assignments",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    registry = Registry(tmp_path / "d" / "models")
    assert registry.versions() == ["seg-0001"]
    loaded = registry.load("seg-0001")  # the skops file loads through the allow-list
    assert loaded.card.rows == ROWS - OBJECTORS and loaded.card.k == 4
    written = pl.read_parquet(out / "*.parquet")
    assert written.height == ROWS - OBJECTORS
    sizes = written.group_by("segment").len()
    assert dict(sizes.iter_rows()) == {s.name: s.size for s in loaded.card.segments}


def test_segment_traits_on_spark_are_the_profile_books(
    spark: Any, profiles: tuple[pl.DataFrame, Path], spark_model: Segmentation
) -> None:
    """Personas resolve against these: the same sizes, means and most common values."""
    from segmentation.book import ProfileBook
    from segmentation.spark_segments import traits_on_spark
    from segmentation.traits import segment_traits

    frame, path = profiles
    schema = pl.scan_parquet(path).collect_schema()
    got = traits_on_spark(spark, read_profiles(spark, [path]), schema, spark_model)
    want = segment_traits(ProfileBook(frame, spark_model).frame)
    assert got.keys() == want.keys()
    for name, traits in got.items():
        assert traits == {k: v for k, v in want[name].items() if k in traits}, name
        assert traits["size"] > 0 and "business_share" in traits


def test_drift_baseline_is_every_customers_as_the_local_path_computes_it(
    profiles: tuple[pl.DataFrame, Path], spark_model: Segmentation
) -> None:
    """Spark's deciles and bin shares over every customer equal `baseline` of the same rows
    (what a local training keeps when its sample is everyone), though it fitted on 30,000."""
    from segmentation.baseline import baseline
    from segmentation.features import feature_matrix

    frame, _ = profiles
    spec = spark_model.card.spec
    kept = frame.filter(~pl.col("objects_to_profiling"))
    want = baseline(feature_matrix(kept, spec), spec.outputs())
    assert spark_model.card.baseline == want
    assert any(len(b.edges) == 9 for b in want)  # some features have ten distinct bins


def test_exact_deciles_from_coarse_brackets(
    spark: Any, profiles: tuple[pl.DataFrame, Path], spark_model: Segmentation
) -> None:
    """With `percentile_approx` 100 times coarser, the brackets are wider, the answer the same."""
    from segmentation.features import feature_matrix
    from segmentation.spark_baseline import QUANTILES, encode_on_spark, quantiles_on_spark

    frame, path = profiles
    spec = spark_model.card.spec
    encoded = encode_on_spark(read_profiles(spark, [path]), spec)
    got = quantiles_on_spark(encoded, len(spec.outputs()), ROWS, accuracy=100)
    want = np.quantile(feature_matrix(frame, spec), QUANTILES, axis=0)
    np.testing.assert_array_equal(got, want)
