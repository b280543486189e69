"""Synthetic profiles: deterministic, schema-true, plausible, and clusterable into their kinds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from segmentation.profiles import CHANNELS, PROFILE_SCHEMA, PROTECTED_COLUMNS, conform
from segmentation.synth import KIND_SHARES, KINDS, synth_profiles, write_profiles

CLUSTER_LOG_FEATURES = (
    "trips_12m",
    "spend_12m",
    "avg_fare",
    "duty_free_spend_12m",
    "lounge_visits_12m",
)
CLUSTER_FEATURES = (*CLUSTER_LOG_FEATURES, "business_share", "tenure_years")

TIMEZONES = {
    "en": {"LHR": "Europe/London", "JFK": "America/New_York", "SFO": "America/Los_Angeles",
           "SIN": "Asia/Singapore"},
    "zh-Hant": {"TPE": "Asia/Taipei", "HKG": "Asia/Hong_Kong"},
    "zh-Hans": {"PVG": "Asia/Shanghai", "PEK": "Asia/Shanghai"},
}  # fmt: skip


@pytest.fixture(scope="module")
def small() -> pl.DataFrame:
    return synth_profiles(5_000, 0)


@pytest.fixture(scope="module")
def large() -> pl.DataFrame:
    return synth_profiles(20_000, 1)


def test_same_seed_gives_same_frame_and_parquet_bytes(tmp_path: Path) -> None:
    first, second = synth_profiles(2_000, 42), synth_profiles(2_000, 42)
    assert first.equals(second, null_equal=True)
    write_profiles(first, tmp_path / "a.parquet")
    write_profiles(second, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert pl.read_parquet(tmp_path / "a.parquet").equals(first, null_equal=True)


def test_different_seed_gives_different_frame() -> None:
    first, second = synth_profiles(1_000, 1), synth_profiles(1_000, 2)
    assert first["customer_id"].equals(second["customer_id"])
    assert not first.equals(second, null_equal=True)


def test_schema_is_profile_schema_plus_latent_kind(small: pl.DataFrame) -> None:
    assert dict(small.schema) == {**PROFILE_SCHEMA, "latent_kind": pl.String()}
    assert conform(small).equals(small, null_equal=True)


def test_customer_ids_are_zero_padded_to_six_digits() -> None:
    assert synth_profiles(3, 0)["customer_id"].to_list() == ["c000001", "c000002", "c000003"]


def test_customer_ids_and_emails_are_unique(small: pl.DataFrame) -> None:
    assert small["customer_id"].n_unique() == small.height
    assert small["email"].n_unique() == small.height
    assert small["email"].str.ends_with("@example.com").all()
    assert small["email"].str.contains(r"^[a-z]+\.[a-z]+[0-9]+@example\.com$").all()


def test_zero_profiles_keep_the_schema() -> None:
    empty = synth_profiles(0, 0)
    assert empty.height == 0
    assert dict(empty.schema) == {**PROFILE_SCHEMA, "latent_kind": pl.String()}


def test_values_are_in_sane_ranges(large: pl.DataFrame) -> None:
    df = large
    assert df["business_share"].is_between(0.0, 1.0).all()
    for column in ("spend_12m", "avg_fare", "duty_free_spend_12m", "complaints_12m"):
        assert (df[column] >= 0).all(), column
    assert (df["trips_12m"] >= 1).all()
    assert (df["lounge_visits_12m"] >= 0).all()
    assert df["tenure_years"].is_between(0.0, 25.0).all()
    assert df["birth_year"].drop_nulls().is_between(1940, 2007).all()
    for column in ("gender", "birth_year"):
        assert 0.03 < df[column].null_count() / df.height < 0.07, column
    non_null = [c for c in PROFILE_SCHEMA if c not in PROTECTED_COLUMNS]
    assert df.select(non_null).null_count().sum_horizontal().item() == 0
    ratio = df["spend_12m"] / (df["trips_12m"] * df["avg_fare"])
    assert ratio.is_between(0.7, 1.5).all()
    assert 0.75 < df["consent_marketing"].cast(pl.Float64).mean() < 0.85  # type: ignore[operator]


def test_allowed_channels_hold_preferred_in_channel_order(large: pl.DataFrame) -> None:
    allowed = large["allowed_channels"].cast(pl.List(pl.String)).to_list()
    preferred = large["preferred_channel"].cast(pl.String).to_list()
    for channels, favourite in zip(allowed, preferred, strict=True):
        assert favourite in channels
        assert 1 <= len(channels) <= 3
        assert channels == sorted(channels, key=CHANNELS.index)
    email_only = sum(channels == ["email"] for channels in allowed) / len(allowed)
    assert 0.02 < email_only < 0.04


def test_young_prefer_app_or_chat_and_older_sms_or_email(large: pl.DataFrame) -> None:
    digital = (
        large.filter(pl.col("birth_year").is_not_null())
        .group_by(young=pl.col("birth_year") >= 1985)
        .agg(share=pl.col("preferred_channel").is_in(["app", "chat"]).mean())
    )
    shares = dict(zip(digital["young"], digital["share"], strict=True))
    assert shares[True] > 0.6
    assert shares[False] < 0.3


def test_home_airport_and_timezone_match_language(large: pl.DataFrame) -> None:
    homes = large.select(pl.col("language").cast(pl.String), "home_airport", "timezone")
    for language, airport, timezone in homes.unique().rows():
        assert TIMEZONES[language][airport] == timezone
    shares = large["language"].value_counts(normalize=True)
    expected = {"en": 0.40, "zh-Hant": 0.35, "zh-Hans": 0.25}
    for language, share in shares.rows():
        assert share == pytest.approx(expected[language], abs=0.02)


def test_kind_shares_are_as_designed(large: pl.DataFrame) -> None:
    shares = dict(large["latent_kind"].value_counts(normalize=True).rows())
    assert set(shares) == set(KINDS)
    for kind, expected in zip(KINDS, KIND_SHARES, strict=True):
        assert shares[kind] == pytest.approx(expected, abs=0.015), kind


def test_protected_attributes_do_not_depend_on_kind(large: pl.DataFrame) -> None:
    per_kind = large.group_by("latent_kind").agg(
        female=(pl.col("gender") == "female").mean(),
        other=(pl.col("gender") == "other").mean(),
        born=pl.col("birth_year").mean(),
        young=(pl.col("birth_year") >= 1985).mean(),
    )
    for column, tolerance in (("female", 0.04), ("other", 0.015), ("born", 1.0), ("young", 0.04)):
        values = per_kind[column].to_list()
        assert max(values) - min(values) < tolerance, column


def test_kmeans_on_behaviour_recovers_latent_kinds(small: pl.DataFrame) -> None:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    features = small.select(
        *(pl.col(c).log1p() for c in CLUSTER_LOG_FEATURES), "business_share", "tenure_years"
    ).to_numpy()
    scaled = StandardScaler().fit_transform(features)
    labels = KMeans(n_clusters=5, n_init=4, random_state=0).fit_predict(scaled)
    assert len(CLUSTER_FEATURES) == features.shape[1]
    assert adjusted_rand_score(small["latent_kind"].to_numpy(), np.asarray(labels)) >= 0.8


def test_conform_names_missing_columns(small: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"missing: tier, complaints_12m$"):
        conform(small.drop("tier", "complaints_12m"))


def test_conform_orders_casts_and_keeps_extras_last(small: pl.DataFrame) -> None:
    shuffled = small.head(5).select(pl.lit("x").alias("note"), *reversed(small.columns))
    shuffled = shuffled.with_columns(pl.col("tier").cast(pl.String), pl.col("trips_12m") * 1)
    conformed = conform(shuffled)
    assert conformed.columns == [*PROFILE_SCHEMA, "note", "latent_kind"]
    assert conformed.drop("note").equals(small.head(5), null_equal=True)
