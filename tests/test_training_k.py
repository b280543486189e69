"""How many segments training keeps: never an empty one, and k explained on the card.

Near-discrete features (travel type, a one-hot class, a loyalty ordinal) give few distinct
profile patterns; silhouette is then 1.0 for every k at or above their number, and a
search that kept the first best saved segments nobody falls in.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
from click.testing import CliRunner

from api.cli import cli
from segmentation.estimators import centers
from segmentation.ksearch import choose_k, fit_without_empty
from segmentation.model import train
from segmentation.spec import parse_spec

KS = range(3, 9)


def patterns(
    rows: list[list[float]], shares: list[float], n: int = 1_500
) -> npt.NDArray[np.float32]:
    """`n` rows drawn from a few distinct feature patterns with the given shares."""
    picked = np.random.default_rng(0).choice(len(rows), n, p=shares)
    return np.asarray(rows, dtype=np.float32)[picked]


def blobs(centres: int, n: int = 1_500) -> npt.NDArray[np.float32]:
    """Continuous data: every row distinct, `centres` well-separated clouds."""
    rng = np.random.default_rng(0)
    at = rng.normal(0, 10, (centres, 3))
    return (at[rng.integers(0, centres, n)] + rng.normal(0, 0.5, (n, 3))).astype(np.float32)


ONEHOT3 = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
FIVE = [[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1], [1, 0, 0, 0], [0, 1, 0, 0]]
TWELVE = [[a, *c, b] for a in (0, 1) for c in ONEHOT3 for b in (0, 1)]


@pytest.mark.parametrize(
    ("case", "matrix", "algorithm", "expected_k", "distinct"),
    [
        ("continuous, 5 clouds", blobs(5), "kmeans", 5, None),
        ("continuous, 5 clouds, gmm", blobs(5), "gmm", 5, None),
        ("2 patterns", patterns([[1, 0], [0, 1]], [0.5, 0.5]), "kmeans", 2, 2),
        ("3 patterns", patterns(ONEHOT3, [0.6, 0.35, 0.05]), "kmeans", 3, 3),
        ("3 patterns, gmm", patterns(ONEHOT3, [0.6, 0.35, 0.05]), "gmm", 3, 3),
        ("5 patterns, one rare", patterns(FIVE, [0.5, 0.3, 0.15, 0.04, 0.01]), "kmeans", 5, 5),
        ("12 patterns: more than k", patterns(TWELVE, [1 / 12] * 12), "kmeans", None, None),
    ],
)
def test_k_rule(
    case: str,
    matrix: npt.NDArray[np.float32],
    algorithm: str,
    expected_k: int | None,
    distinct: int | None,
) -> None:
    heard: list[str] = []
    choice = choose_k(matrix, [1.0] * matrix.shape[1], algorithm, KS, seed=7, say=heard.append)
    assert choice.patterns == distinct, case
    assert choice.rule == heard[-1]  # the log ends with the rule applied
    if distinct is not None:
        assert choice.k <= distinct and f"{distinct} distinct profile patterns" in choice.rule
        assert all(s.k <= distinct for s in choice.scores)  # no k above the patterns tried
    if choice.scores:  # otherwise still by silhouette: the best, ties to the smallest k
        best = max(s.silhouette for s in choice.scores)
        assert choice.k == min(s.k for s in choice.scores if s.silhouette >= best - 0.001)
        assert [f"k={s.k}: silhouette {s.silhouette:.3f}" for s in choice.scores] == heard[:-1]
    if expected_k is not None:
        assert choice.k == expected_k, (case, choice)


def test_one_pattern_cannot_be_segmented() -> None:
    with pytest.raises(ValueError, match="same feature values"):
        choose_k(patterns([[1, 0]], [1.0]), [1.0, 1.0], "kmeans", KS, seed=7)


def test_an_asked_k_above_the_patterns_is_lowered_and_said() -> None:
    profiles = pl.DataFrame({"business_share": [0.0, 1.0] * 50, "trips_12m": [3] * 100})
    spec = parse_spec('[[features]]\ncolumn = "business_share"')
    model = train(profiles, version="v", k=5, spec=spec)
    assert model.card.k == 2 and sorted(s.size for s in model.card.segments) == [50, 50]
    assert "k=5 as asked; only 2 distinct profile patterns" in model.card.k_rule


PASSENGER_MAPPING = """
[columns]
customer_id = "Passenger"
business_share = "Type of Travel"
tier = "Customer Type"
gender = "Gender"

[values.business_share]
"Business travel" = 1.0
"Personal Travel" = 0.0

[values.tier]
"Loyal Customer" = "gold"
"disloyal Customer" = "basic"

[values.gender]
Female = "female"
Male = "male"

[constants]
language = "en"
preferred_channel = "email"
allowed_channels = "email"
consent_marketing = false
"""

PASSENGER_SPEC = """
[[features]]
column = "business_share"     # type of travel

[[features]]
column = "Class"
transform = "onehot"

[[features]]
column = "tier"               # loyalty
transform = "ordinal"
order = ["basic", "silver", "gold", "platinum"]

[[features]]
column = "Flight Distance"
transform = "log1p"
"""


def one_flight(personal_classes: list[str], n: int = 2_000) -> pl.DataFrame:
    """A survey of one flight: the same distance for all, class and loyalty by travel type.

    Business travellers sit in Business and are members; personal travellers fly one of
    `personal_classes` and are not. Age and gender vary, and must not become features.
    """
    rng = np.random.default_rng(16)
    business = rng.random(n) < 0.4
    return pl.DataFrame(
        {
            "Passenger": [f"P{i:05d}" for i in range(n)],
            "Gender": rng.choice(["Female", "Male"], n),
            "Age": rng.integers(7, 85, n),
            "Customer Type": np.where(business, "Loyal Customer", "disloyal Customer"),
            "Type of Travel": np.where(business, "Business travel", "Personal Travel"),
            "Class": np.where(business, "Business", rng.choice(personal_classes, n)),
            "Flight Distance": [1_846] * n,
        }
    )


@pytest.mark.parametrize(
    ("personal_classes", "k"),
    [(["Eco", "Eco Plus"], 3), (["Eco"], 2)],  # k=2 is below the range searched (3…8)
)
def test_a_mapped_passenger_file_trains_without_empty_segments(
    tmp_path: Path, personal_classes: list[str], k: int
) -> None:
    runner = CliRunner()
    data = ["--data", str(tmp_path / "data")]
    one_flight(personal_classes).write_csv(tmp_path / "flight.csv")
    (tmp_path / "map.toml").write_text(PASSENGER_MAPPING)
    (tmp_path / "spec.toml").write_text(PASSENGER_SPEC)
    imported = runner.invoke(
        cli,
        [
            *data,
            "profiles",
            "import",
            str(tmp_path / "flight.csv"),
            "--mapping",
            str(tmp_path / "map.toml"),
        ],
    )
    assert imported.exit_code == 0, imported.output

    trained = runner.invoke(
        cli, [*data, "segments", "train", "--spec", str(tmp_path / "spec.toml")], terminal_width=200
    )
    assert trained.exit_code == 0, trained.output
    assert f"k: only {k} distinct profile patterns in the features: k={k}" in trained.output
    shown = runner.invoke(cli, [*data, "segments", "show", "seg-0001", "--json"])
    card = json.loads(shown.output)
    sizes = sorted(s["size"] for s in card["segments"])
    assert card["k"] == k and len(sizes) == k and min(sizes) > 0 and sum(sizes) == 2_000
    assert f"only {k} distinct profile patterns" in card["k_rule"]
    assert not {"gender", "Age", "birth_year"} & {f["column"] for f in card["spec"]["features"]}

    # protected attributes stay out unless the spec explicitly allows them
    (tmp_path / "with-gender.toml").write_text(
        PASSENGER_SPEC + '\n[[features]]\ncolumn = "gender"\ntransform = "onehot"\n'
    )
    refused = runner.invoke(
        cli, [*data, "segments", "train", "--spec", str(tmp_path / "with-gender.toml")]
    )
    assert refused.exit_code != 0 and "gender: protected attribute" in refused.output


def test_a_fit_that_leaves_a_segment_empty_is_refitted_with_fewer() -> None:
    """The last guard, for any k that slips past the pattern count (e.g. a gmm collapse)."""
    two = patterns([[1, 0], [0, 1]], [0.7, 0.3])
    heard: list[str] = []
    with warnings.catch_warnings():  # sklearn warns that it found 2 distinct clusters, not 4
        warnings.simplefilter("ignore")
        pipeline, labels, rule = fit_without_empty(
            two, [1.0, 1.0], "kmeans", 4, 7, "k=4", heard.append
        )
    assert len(centers(pipeline)) == 2 and sorted(np.bincount(labels)) == [473, 1027]
    assert rule == "k=4; k=4 left 2 segment(s) empty; refitted with k=2"
    assert heard[1] == "k=4 left 2 segment(s) empty; refitted with k=2"
