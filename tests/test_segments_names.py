"""Names survive retraining: matching to the parent, analyst renames, vanished and new names."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from segmentation.matching import match_clusters
from segmentation.model import Segmentation, train
from segmentation.registry import Registry
from segmentation.synth import synth_profiles


@pytest.fixture(scope="module")
def renamed_parent(model: Segmentation) -> Segmentation:
    """The session model with one segment renamed and described by an analyst."""
    segments = [
        msgspec.structs.replace(
            s, name="globetrotter", description="our most frequent flyers", renamed=True
        )
        if s.name == "road-warrior"
        else s
        for s in model.card.segments
    ]
    return model.with_card(msgspec.structs.replace(model.card, segments=segments))


@pytest.fixture(scope="module")
def resample() -> pl.DataFrame:
    """Another draw from the same population (different customers, same kinds)."""
    return synth_profiles(3_000, 8)


def test_names_carry_over_to_a_model_trained_on_a_resample(
    renamed_parent: Segmentation, resample: pl.DataFrame, population: pl.DataFrame
) -> None:
    child = train(resample.drop("latent_kind"), version="child", k=5, seed=3, parent=renamed_parent)
    card = child.card
    assert card.parent == "seg-0001" and card.vanished == []
    assert {s.name for s in card.segments} == {s.name for s in renamed_parent.card.segments}
    assert all(s.carried for s in card.segments)
    globetrotter = card.segment("globetrotter")
    assert globetrotter.renamed and globetrotter.description == "our most frequent flyers"
    # the carried names mean the same customers: both versions agree on the population
    before = renamed_parent.assign(population)["segment"]
    after = child.assign(population)
    assert (before == after["segment"]).mean() >= 0.95
    kinds = after.filter(pl.col("segment") == "globetrotter")["latent_kind"]
    assert (kinds == "road-warrior").mean() >= 0.9


def test_fewer_clusters_list_the_names_that_vanish(
    model: Segmentation, resample: pl.DataFrame
) -> None:
    child = train(resample.drop("latent_kind"), version="k4", k=4, seed=3, parent=model)
    parent_names = {s.name for s in model.card.segments}
    names = {s.name for s in child.card.segments}
    assert child.card.vanished and set(child.card.vanished) == parent_names - names
    assert all(s.name in parent_names for s in child.card.segments if s.carried)
    assert all(s.name not in parent_names for s in child.card.segments if not s.carried)


def test_a_new_cluster_gets_a_new_name(model: Segmentation, resample: pl.DataFrame) -> None:
    child = train(resample.drop("latent_kind"), version="k6", k=6, seed=3, parent=model)
    parent_names = {s.name for s in model.card.segments}
    fresh = [s for s in child.card.segments if not s.carried]
    assert len(fresh) == 1 and fresh[0].name not in parent_names
    assert child.card.vanished == []
    assert len({s.name for s in child.card.segments}) == 6


def test_matching_is_optimal_and_respects_the_distance_limit() -> None:
    distances = np.array([[0.1, 0.2, 3.0], [0.15, 5.0, 4.0]])
    pairs = {(m.new, m.parent) for m in match_clusters(distances, max_distance=1.0)}
    assert pairs == {(0, 1), (1, 0)}  # greedy would pair (0, 0) and leave 1 worse off
    assert match_clusters(np.array([[2.0]]), max_distance=1.0) == []


def test_gaussian_mixture_recovers_the_kinds_and_round_trips(
    population: pl.DataFrame, tmp_path: Path
) -> None:
    gmm = train(population.drop("latent_kind"), version="g1", k=5, seed=7, algorithm="gmm")
    assigned = gmm.assign(population)
    assert adjusted_rand_score(assigned["latent_kind"], assigned["segment"]) >= 0.8
    registry = Registry(tmp_path)
    registry.save(gmm)
    loaded = registry.load("g1")
    assert loaded.assign(population)["segment"].equals(assigned["segment"])


def test_training_from_a_parquet_file_samples_then_assigns_every_row(
    population: pl.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "profiles.parquet"
    population.write_parquet(path, row_group_size=700)
    ticks: list[tuple[int, int]] = []
    phases: list[str] = []
    model = train(
        path,
        version="f1",
        k=5,
        seed=7,
        sample_rows=1_500,
        batch_rows=1_000,
        progress=phases.append,
        advance=lambda done, total: ticks.append((done, total)),
    )
    card = model.card
    assert card.rows == 3_000 and 1_200 < card.sample_rows < 1_800
    assert sum(s.size for s in card.segments) == 3_000
    assert ticks == [(1_000, 3_000), (2_000, 3_000), (3_000, 3_000)]
    assert any("assigning all 3,000" in p for p in phases)
    assert card.source == str(path) and card.data_fingerprint.startswith("sha256:")
    assigned = model.assign(population)
    assert adjusted_rand_score(assigned["latent_kind"], assigned["segment"]) >= 0.8


def test_k_is_chosen_by_silhouette_when_not_given(population: pl.DataFrame) -> None:
    steps: list[str] = []
    chosen = train(
        population.drop("latent_kind"), version="auto", seed=7, k_range=range(3, 7),
        progress=steps.append,
    )  # fmt: skip
    assert 3 <= chosen.card.k <= 6
    assert [s.split(":")[0] for s in steps if s.startswith("k=")] == ["k=3", "k=4", "k=5", "k=6"]
    again = train(population.drop("latent_kind"), version="auto", seed=7, k_range=range(3, 7))
    assert again.card.k == chosen.card.k
