"""Feature spec: TOML, transforms, weights, protected columns; the custom estimator's contract."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from segmentation.estimators import WeightedScaler
from segmentation.features import feature_matrix, resolve_spec, sample_matrix
from segmentation.model import train
from segmentation.profiles import TIERS
from segmentation.spec import (
    DEFAULT_FEATURES,
    DEFAULT_SPEC,
    Feature,
    FeatureError,
    FeatureSpec,
    parse_spec,
)

FRAME = pl.DataFrame(
    {
        "spend": [0.0, 9.0, 99.0, None, -5.0],
        "tier": pl.Series(["basic", "gold", "platinum", "silver", None], dtype=pl.Enum(TIERS)),
        "city": ["TPE", "LHR", None, "TPE", "SIN"],
        "visits": pl.Series([0, 3, -2, 5, 1], dtype=pl.Int32),  # log1p by table lookup
        "big": pl.Series([0, 3, None, 70_000, 1], dtype=pl.Int64),  # too wide for a table
        "share": [0.5, float("nan"), 1.0, None, 0.25],
        "flag": [True, False, None, True, False],
        "band": ["low", "high", "mid", "top", None],
    }
)


@pytest.mark.parametrize(
    ("feature", "expected"),
    [
        (Feature(column="spend"), [[0], [9], [99], [0], [-5]]),
        (Feature(column="spend", transform="log1p"), np.log1p([[0], [9], [99], [0], [0]])),
        (Feature(column="spend", transform="clip", lower=0, upper=10), [[0], [9], [10], [0], [0]]),
        (Feature(column="spend", transform="clip", upper=50), [[0], [9], [50], [0], [-5]]),
        (
            Feature(column="tier", transform="ordinal", order=list(TIERS)),
            [[0], [2], [3], [1], [0]],
        ),
        (
            Feature(column="tier", transform="onehot"),  # categories from the Enum
            [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]],
        ),
        (
            Feature(column="city", transform="onehot"),  # categories from the values, sorted
            [[0, 0, 1], [1, 0, 0], [0, 0, 0], [0, 0, 1], [0, 1, 0]],
        ),
        (
            Feature(column="city", transform="onehot", categories=["TPE"]),
            [[1], [0], [0], [1], [0]],
        ),
        (
            Feature(column="visits", transform="log1p"),
            np.log1p([[0], [3], [0], [5], [1]]),
        ),
        (
            Feature(column="big", transform="log1p"),
            np.log1p([[0], [3], [0], [70_000], [1]]),
        ),
        (Feature(column="share"), [[0.5], [0], [1], [0], [0.25]]),  # NaN and null: 0
        (Feature(column="flag"), [[1], [0], [0], [1], [0]]),
        (
            Feature(column="band", transform="ordinal", order=["low", "mid", "high"]),
            [[0], [2], [1], [0], [0]],  # unknown and null rank 0
        ),
    ],
    ids=[
        "identity",
        "log1p",
        "clip-both",
        "clip-upper",
        "ordinal",
        "onehot-enum",
        "onehot-str",
        "onehot-given",
        "log1p-int-lookup",
        "log1p-int-wide",
        "identity-nan",
        "identity-bool",
        "ordinal-str",
    ],
)
def test_transforms(feature: Feature, expected: Any) -> None:
    matrix = feature_matrix(FRAME, (feature,))
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(matrix, np.asarray(expected, dtype=np.float32), rtol=1e-6)


def test_onehot_outputs_are_named_and_fixed_at_training() -> None:
    spec = resolve_spec(FeatureSpec(features=[Feature(column="city", transform="onehot")]), FRAME)
    assert spec.outputs() == ["city=LHR", "city=SIN", "city=TPE"]
    later = pl.DataFrame({"city": ["NRT", "SIN"]})  # an unseen value encodes as all zeros
    assert feature_matrix(later, spec).tolist() == [[0, 0, 0], [0, 1, 0]]


def test_weights_multiply_the_standardized_column(population: pl.DataFrame) -> None:
    spec = FeatureSpec(
        features=[Feature(column="trips_12m", weight=3.0), Feature(column="tenure_years")]
    )
    model = train(population, version="w", k=3, seed=1, spec=spec)
    scaled = model.pipeline[:-1].transform(feature_matrix(population, spec))
    np.testing.assert_allclose(scaled.std(axis=0), [3.0, 1.0], rtol=1e-3)
    np.testing.assert_allclose(scaled.mean(axis=0), [0.0, 0.0], atol=1e-4)
    assert model.card.spec.weights() == [3.0, 1.0]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[features]]\ncolumn = "gender"', "feature gender: protected attribute"),
        ('[[features]]\ncolumn = "birth_year"', "feature birth_year: protected attribute"),
        (
            'protected = ["home_airport"]\n[[features]]\ncolumn = "home_airport"\n'
            'transform = "onehot"',
            "feature home_airport: protected attribute",
        ),
        (
            '[[features]]\ncolumn = "tier"\ntransform = "onehot"\nprotected = true',
            "feature tier: protected attribute",
        ),
        ('[[features]]\ncolumn = "spend_12m"\ntransform = "clip"', "feature spend_12m: clip needs"),
        ('[[features]]\ncolumn = "tier"\ntransform = "ordinal"', "feature tier: ordinal needs"),
        (
            '[[features]]\ncolumn = "x"\ntransform = "sqrt"',
            r"feature x: .*features\[0\]\.transform",
        ),
        ('[[features]]\ncolumn = "x"\nweight = 0', r"feature x: .*features\[0\]\.weight"),
        ("features = [", "not valid TOML"),
    ],
)
def test_bad_specs_are_refused_naming_the_column(toml: str, message: str) -> None:
    with pytest.raises(FeatureError, match=message):
        parse_spec(toml)


def test_protected_columns_are_allowed_only_when_the_spec_says_so(
    population: pl.DataFrame,
) -> None:
    text = '[[features]]\ncolumn = "birth_year"\n[[features]]\ncolumn = "trips_12m"\n'
    with pytest.raises(FeatureError, match="birth_year: protected"):
        parse_spec(text)
    spec = parse_spec("allow_protected = true\n" + text)
    model = train(population, version="p", k=3, seed=1, spec=spec)
    assert model.card.spec.allow_protected and "birth_year" in model.card.spec.outputs()


def test_unknown_columns_are_named(population: pl.DataFrame) -> None:
    with pytest.raises(FeatureError, match="shoe_size: no such profile column"):
        train(
            population, version="x", k=3, spec=FeatureSpec(features=[Feature(column="shoe_size")])
        )


def test_the_default_spec_ships_as_toml_and_matches_the_defaults() -> None:
    assert tuple(DEFAULT_SPEC.features) == DEFAULT_FEATURES
    assert not DEFAULT_SPEC.allow_protected
    assert DEFAULT_SPEC.outputs()[0] == "log1p_trips_12m"


def test_file_sample_is_uniform_and_reproducible(population: pl.DataFrame, tmp_path: Any) -> None:
    path = tmp_path / "p.parquet"
    population.write_parquet(path, row_group_size=500)
    spec = resolve_spec(DEFAULT_SPEC, path)
    a = sample_matrix(path, spec, 1_000, seed=3)
    b = sample_matrix(path, spec, 1_000, seed=3)
    assert np.array_equal(a, b) and 800 < len(a) < 1_200
    full = feature_matrix(population, spec)
    np.testing.assert_allclose(a.mean(axis=0), full.mean(axis=0), atol=0.15)


@parametrize_with_checks([WeightedScaler()])
def test_weighted_scaler_follows_the_estimator_contract(estimator: Any, check: Any) -> None:
    check(estimator)
