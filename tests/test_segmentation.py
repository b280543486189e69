"""Segmentation: real training on small synthetic data, names, registry."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import Pipeline

import segmentation.model as model_module
from segmentation.estimators import FoldedKMeans, make_pipeline
from segmentation.features import (
    DEFAULT_FEATURES,
    DEFAULT_SPEC,
    Encoder,
    Feature,
    FeatureError,
    FeatureSpec,
    feature_matrix,
    resolve_spec,
)
from segmentation.model import Algorithm, Segmentation, train
from segmentation.naming import name_clusters
from segmentation.profiles import TIERS
from segmentation.registry import Registry, RegistryError
from segmentation.synth import synth_profiles

ARCHETYPES = {
    "road-warrior",
    "premium-business",
    "leisure-family",
    "duty-free-shopper",
    "occasional-flyer",
}


def test_segments_recover_the_latent_traveller_kinds(
    model: Segmentation, population: pl.DataFrame
) -> None:
    assigned = model.assign(population)
    assert adjusted_rand_score(assigned["latent_kind"], assigned["segment"]) >= 0.8
    # and each named segment is mostly the kind of the same name
    purity = (
        assigned.group_by("segment", "latent_kind")
        .len()
        .filter(pl.col("segment") == pl.col("latent_kind"))
        .join(assigned.group_by("segment").len("size"), on="segment")
        .with_columns(share=pl.col("len") / pl.col("size"))
    )
    assert set(purity["segment"]) == ARCHETYPES
    assert purity["share"].min() >= 0.8


def test_names_are_stable_for_a_fixed_seed(population: pl.DataFrame) -> None:
    profiles = population.drop("latent_kind")
    a = train(profiles, version="a", k=5, seed=11)
    b = train(profiles, version="b", k=5, seed=11)
    assert [s.name for s in a.card.segments] == [s.name for s in b.card.segments]
    assert a.assign(profiles)["segment"].equals(b.assign(profiles)["segment"])


def test_names_survive_a_different_sample_and_seed() -> None:
    first = train(synth_profiles(2_000, 1).drop("latent_kind"), version="a", k=5, seed=1)
    second = train(synth_profiles(2_000, 2).drop("latent_kind"), version="b", k=5, seed=2)
    assert {s.name for s in first.card.segments} == ARCHETYPES
    assert {s.name for s in second.card.segments} == ARCHETYPES


def test_clusters_fitting_no_archetype_get_descriptive_unique_names() -> None:
    columns = ["trips_12m", "complaints_12m"]
    centroids = np.array([[0.0, 3.0], [0.1, 2.5], [-2.0, 0.0]])
    names = [n for n, _ in name_clusters(centroids, columns)]
    assert len(set(names)) == 3
    assert names[0] == "high-complaints" and names[1] == "high-complaints-2"
    assert names[2] == "occasional-flyer"


def test_descriptions_say_what_sets_a_segment_apart(model: Segmentation) -> None:
    by_name = {s.name: s.description for s in model.card.segments}
    assert "duty-free" in by_name["duty-free-shopper"]
    assert "business" in by_name["road-warrior"] or "frequent" in by_name["road-warrior"]


def test_protected_columns_are_refused_as_features(population: pl.DataFrame) -> None:
    with pytest.raises(FeatureError, match="birth_year: protected"):
        feature_matrix(population, (*DEFAULT_FEATURES, Feature(column="birth_year")))
    with pytest.raises(FeatureError, match="shoe_size: no such profile column"):
        feature_matrix(population, (Feature(column="shoe_size"),))


def test_registry_round_trip_and_active_pointer(
    model: Segmentation, population: pl.DataFrame, tmp_path: Path
) -> None:
    registry = Registry(tmp_path / "models")
    assert registry.active() is None and registry.next_version() == "seg-0001"
    registry.save(model)
    registry.promote("seg-0001")
    loaded = registry.load(registry.active() or "")
    assert loaded.card == model.card
    assert loaded.assign(population)["segment"].equals(model.assign(population)["segment"])
    assert not hasattr(loaded.pipeline.named_steps["cluster"], "labels_")
    with pytest.raises(RegistryError, match="no segmentation version"):
        registry.promote("seg-0042")


def test_registry_refuses_a_model_file_with_unexpected_types(
    model: Segmentation, tmp_path: Path
) -> None:
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    registry = Registry(tmp_path / "models")
    registry.save(model)
    tampered = Pipeline([("f", FunctionTransformer(np.log1p)), *model.pipeline.steps])
    sio.dump(tampered, tmp_path / "models" / "seg-0001" / "model.skops")
    with pytest.raises(RegistryError, match="untrusted types"):
        registry.load("seg-0001")


SPEC_ALL = FeatureSpec(
    features=[
        *DEFAULT_FEATURES,
        Feature(column="complaints_12m", transform="log1p"),
        Feature(column="tier", transform="ordinal", order=list(TIERS)),
        Feature(column="language", transform="onehot", weight=0.5),
        Feature(column="spend_12m", transform="clip", lower=100.0, upper=5_000.0),
    ]
)
"""Every kind of encoding: float and integer log1p, identity, ordinal, one-hot, clip."""


@pytest.fixture(scope="module")
def untidy(population: pl.DataFrame) -> pl.DataFrame:
    """The population with nulls and NaN sprinkled into numeric and categorical columns."""
    every = pl.int_range(pl.len()) % 37 == 0
    return population.drop("latent_kind").with_columns(
        spend_12m=pl.when(every).then(float("nan")).otherwise("spend_12m"),
        business_share=pl.when(pl.int_range(pl.len()) % 41 == 0)
        .then(float("nan"))
        .otherwise("business_share"),
        trips_12m=pl.when(pl.int_range(pl.len()) % 43 == 0).then(None).otherwise("trips_12m"),
        tier=pl.when(pl.int_range(pl.len()) % 47 == 0).then(None).otherwise("tier"),
    )


@pytest.mark.parametrize("algorithm", ["kmeans", "gmm"])
@pytest.mark.parametrize("spec", [DEFAULT_SPEC, SPEC_ALL], ids=["default", "all-encodings"])
def test_assignment_is_exactly_the_pipelines_prediction(
    untidy: pl.DataFrame,
    algorithm: Algorithm,
    spec: FeatureSpec,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trained = train(untidy, version="x", k=6, seed=3, spec=spec, algorithm=algorithm)
    expected = trained.pipeline.predict(feature_matrix(untidy, trained.card.spec))
    assert np.array_equal(trained.predict_frame(untidy), expected)
    monkeypatch.setattr(model_module, "BLOCK_ROWS", 256)  # many blocks, on every core
    assert np.array_equal(trained.predict_frame(untidy), expected)
    names = {s.cluster: s.name for s in trained.card.segments}
    assert trained.assign(untidy)["segment"].to_list() == [names[c] for c in expected]


def test_near_ties_are_decided_by_the_pipeline(
    model: Segmentation, untidy: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    folded = FoldedKMeans.of(model.pipeline)
    assert folded is not None and FoldedKMeans.of(object_pipeline()) is None
    wary = dataclasses.replace(folded, slack=1e30)  # every row counts as a near tie
    transposed = Encoder(untidy, model.card.spec).transposed()
    assert wary.nearest(transposed, np.empty(untidy.height, np.int32)).all()
    assert not folded.nearest(transposed, np.empty(untidy.height, np.int32)).all()
    monkeypatch.setattr(FoldedKMeans, "of", staticmethod(lambda _pipeline: wary))
    expected = model.pipeline.predict(feature_matrix(untidy, model.card.spec))
    assert np.array_equal(model.predict_frame(untidy), expected)


def object_pipeline() -> Pipeline:
    """A scaler + GaussianMixture pipeline: no centroids to fold."""
    return make_pipeline([1.0], "gmm", 2, 0)


def test_the_encoder_writes_any_block_of_rows(untidy: pl.DataFrame) -> None:
    spec = resolve_spec(SPEC_ALL, untidy)
    encoder = Encoder(untidy, spec)
    full = encoder.transposed()
    assert full.shape == (len(spec.outputs()), untidy.height) and full.flags.c_contiguous
    assert np.array_equal(encoder.transposed(1_000, 1_700), full[:, 1_000:1_700])
    assert np.array_equal(encoder.transposed(2_900, 9_999), full[:, 2_900:])
    assert np.isfinite(full).all()  # NaN and null encode as 0
    assert np.array_equal(feature_matrix(untidy, spec), full.T)
