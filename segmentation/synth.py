"""Synthetic customer profiles for demos, tests and benchmarks.

Customers are drawn from five latent traveller kinds with well-separated behaviour, so a
segmentation can be checked against a known truth (`latent_kind`, never a feature).
Protected attributes (gender, birth_year) are drawn independently of the kind, so segments
learnt from behaviour are not proxies for them (tenure is deliberately independent of age
too, at the price of the odd young customer with a long tenure). Everything is vectorized:
a million profiles take one to two seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import polars.selectors as cs

from segmentation.profiles import CHANNELS, GENDERS, LANGUAGES, TIERS, conform

__all__ = ["KINDS", "KIND_SHARES", "synth_profiles", "write_profiles"]

_Ints = npt.NDArray[np.int64]
_Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Kind:
    """Behaviour of one latent traveller kind: medians, spreads and clip ranges."""

    name: str
    share: float
    trips: tuple[float, float, float, float]  # lognormal median, sigma, min, max
    business: tuple[float, float, float, float]  # beta a, b, min, max
    fare: tuple[float, float, float, float]  # lognormal median, sigma, min, max (EUR)
    duty_free: tuple[float, float, float, float]  # lognormal median, sigma, min, max (EUR)
    duty_free_zero: float  # share who bought nothing duty-free
    lounge_per_trip: float  # Poisson rate of lounge visits per trip
    tenure: tuple[float, float]  # gamma shape, scale (years)
    tiers: tuple[float, float, float, float]  # probabilities over TIERS


_KINDS = (
    _Kind(
        "road-warrior", 0.15, trips=(40, 0.35, 25, 80), business=(16, 3, 0.7, 0.95),
        fare=(450, 0.3, 200, 1200), duty_free=(150, 0.6, 10, 1000), duty_free_zero=0.05,
        lounge_per_trip=0.4, tenure=(6, 1.5), tiers=(0.05, 0.35, 0.5, 0.1),
    ),
    _Kind(
        "premium-business", 0.10, trips=(12, 0.3, 8, 20), business=(10, 3, 0.6, 0.9),
        fare=(3000, 0.35, 1500, 6000), duty_free=(400, 0.7, 20, 3000), duty_free_zero=0.05,
        lounge_per_trip=0.9, tenure=(8, 1.6), tiers=(0.0, 0.05, 0.4, 0.55),
    ),
    _Kind(
        "leisure-family", 0.30, trips=(2.3, 0.4, 1, 4), business=(1, 40, 0.0, 0.1),
        fare=(380, 0.3, 120, 1000), duty_free=(70, 0.6, 5, 400), duty_free_zero=0.08,
        lounge_per_trip=0.0, tenure=(5, 1.4), tiers=(0.65, 0.35, 0.0, 0.0),
    ),
    _Kind(
        "duty-free-shopper", 0.20, trips=(5.5, 0.3, 3, 10), business=(2, 12, 0.0, 0.4),
        fare=(600, 0.3, 200, 2000), duty_free=(1500, 0.45, 500, 5000), duty_free_zero=0.0,
        lounge_per_trip=0.3, tenure=(5, 1.6), tiers=(0.05, 0.55, 0.4, 0.0),
    ),
    _Kind(
        "occasional-flyer", 0.25, trips=(1.2, 0.25, 1, 2), business=(1, 20, 0.0, 0.3),
        fare=(200, 0.35, 60, 700), duty_free=(25, 0.5, 5, 100), duty_free_zero=0.7,
        lounge_per_trip=0.0, tenure=(1.5, 0.8), tiers=(0.95, 0.05, 0.0, 0.0),
    ),
)  # fmt: skip

KINDS: tuple[str, ...] = tuple(kind.name for kind in _KINDS)
"""Latent traveller kinds, in the order of their codes."""

KIND_SHARES: tuple[float, ...] = tuple(kind.share for kind in _KINDS)
"""Expected share of each kind in a synthetic population."""

# Homes: (language, airport, IANA timezone, share, phone format). Each x in a phone format
# is a random digit; the numbers are fake, and the UK and US ones sit in ranges reserved
# for fiction.
_HOMES: tuple[tuple[str, str, str, float, str], ...] = (
    ("en", "LHR", "Europe/London", 0.40 * 0.35, "+44 7700 900xxx"),
    ("en", "JFK", "America/New_York", 0.40 * 0.25, "+1 212 555 01xx"),
    ("en", "SFO", "America/Los_Angeles", 0.40 * 0.20, "+1 415 555 01xx"),
    ("en", "SIN", "Asia/Singapore", 0.40 * 0.20, "+65 9xxx xxxx"),
    ("zh-Hant", "TPE", "Asia/Taipei", 0.35 * 0.75, "+886 9xx xxx xxx"),
    ("zh-Hant", "HKG", "Asia/Hong_Kong", 0.35 * 0.25, "+852 9xxx xxxx"),
    ("zh-Hans", "PVG", "Asia/Shanghai", 0.25 * 0.60, "+86 13x xxxx xxxx"),
    ("zh-Hans", "PEK", "Asia/Shanghai", 0.25 * 0.40, "+86 13x xxxx xxxx"),
)
_PHONE_FORMAT = re.compile(r"([^x]+)(x+)(?:([^x]+)(x+))?(?:([^x]+)(x+))?")
_PHONE_DIGITS = 9

# Given names by style and sex; style follows language, with English names common in
# Hong Kong, Taiwan and Singapore too.
_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("english", "female"): ("Emma", "Olivia", "Sophie", "Grace", "Charlotte", "Emily", "Chloe"),
    ("english", "male"): ("James", "Oliver", "Jack", "Thomas", "Daniel", "Ethan", "Michael"),
    ("hant", "female"): ("Mei-Ling", "Shu-Fen", "Ya-Ting", "Hsiao-Wen", "Ka-Yan", "Wing-Sze"),
    ("hant", "male"): ("Chih-Hao", "Chia-Hung", "Yu-Cheng", "Kwok-Wai", "Chun-Kit", "Wen-Bin"),
    ("hans", "female"): ("Jing", "Xiaoyu", "Yiran", "Li Na", "Xinyi", "Yuting"),
    ("hans", "male"): ("Wei", "Hao", "Xiaoming", "Jun", "Zihan", "Yifan"),
}
_STYLES = ("english", "hant", "hans")
_ENGLISH_NAME_SHARE = {"en": 0.85, "zh-Hant": 0.45, "zh-Hans": 0.10}
_NATIVE_STYLE = {"en": "hans", "zh-Hant": "hant", "zh-Hans": "hans"}  # en: Singapore
_SURNAMES: dict[str, tuple[str, ...]] = {
    "english": ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Patel", "Walker"),
    "hant": ("Chen", "Lin", "Huang", "Chang", "Lee", "Wong", "Chan", "Cheung", "Tsai"),
    "hans": ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Zhou", "Tan", "Lim"),
}

_GENDER_SHARES = (0.49, 0.48, 0.03)
_NULL_SHARE = 0.05  # per protected column, independently
_YOUNG_FROM = 1985  # born this year or later: prefers app and chat
_CHANNEL_SHARES = {  # over CHANNELS: sms, email, app, chat
    False: (0.40, 0.40, 0.15, 0.05),
    True: (0.10, 0.15, 0.45, 0.30),
}
_EXTRA_CHANNEL_SHARES = (0.35, 0.40, 0.25)  # 0, 1 or 2 channels besides the preferred one
_EMAIL_ONLY_SHARE = 0.03
_CONSENT_SHARE = 0.80


def synth_profiles(n: int, seed: int) -> pl.DataFrame:
    """Draw `n` profiles (PROFILE_SCHEMA plus `latent_kind`); same seed, same frame."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    rng = np.random.default_rng(seed)
    kind = rng.choice(len(_KINDS), size=n, p=KIND_SHARES)
    behaviour = _behaviour(rng, kind)

    home = rng.choice(len(_HOMES), size=n, p=[h[3] for h in _HOMES])
    language = np.array([LANGUAGES.index(h[0]) for h in _HOMES])[home]
    gender = rng.choice(len(GENDERS), size=n, p=_GENDER_SHARES)
    birth_year = np.clip(np.rint(rng.normal(1979, 14, n)), 1940, 2007).astype(np.int64)
    first_name, surname = _names(rng, language, gender)
    preferred, allowed = _channels(rng, birth_year >= _YOUNG_FROM)

    width = max(6, len(str(n)))
    number = pl.col("_number").cast(pl.String)
    raw = pl.DataFrame(
        {
            "_number": np.arange(1, n + 1),
            "_digits": rng.integers(0, 10**_PHONE_DIGITS, n),
            "_home": home,
            "first_name": first_name,
            "_surname": surname,
            "language": _enum(LANGUAGES, language),
            "preferred_channel": _enum(CHANNELS, preferred),
            "allowed_channels": _channel_lists(allowed),
            "consent_marketing": rng.random(n) < _CONSENT_SHARE,
            "home_airport": pl.Series([h[1] for h in _HOMES]).gather(home),
            "timezone": pl.Series([h[2] for h in _HOMES]).gather(home),
            **behaviour,
            "gender": _enum(GENDERS, gender),
            "_gender_null": rng.random(n) < _NULL_SHARE,
            "birth_year": birth_year,
            "_birth_year_null": rng.random(n) < _NULL_SHARE,
            "latent_kind": pl.Series(KINDS).gather(kind),
        }
    )
    df = raw.with_columns(
        customer_id=pl.concat_str(pl.lit("c"), number.str.zfill(width)),
        email=pl.concat_str(
            pl.col("first_name").str.to_lowercase().str.replace_all(r"[- ]", ""),
            pl.lit("."),
            pl.col("_surname").str.to_lowercase(),
            number,
            pl.lit("@example.com"),
        ),
        phone=_phone_expr(pl.col("_home"), pl.col("_digits")),
        gender=pl.when(~pl.col("_gender_null")).then(pl.col("gender")),
        birth_year=pl.when(~pl.col("_birth_year_null")).then(pl.col("birth_year")),
    )
    return conform(df.drop(cs.starts_with("_")))


def write_profiles(df: pl.DataFrame, path: str | Path) -> None:
    """Write profiles as Parquet so the same frame always gives the same bytes."""
    df.rechunk().write_parquet(path, compression="zstd", statistics=True)


def _behaviour(rng: np.random.Generator, kind: _Ints) -> dict[str, pl.Series]:
    """Travel, spend and loyalty columns, each drawn from its kind's distribution."""
    n = len(kind)

    def per_kind(field: str) -> _Floats:
        table: _Floats = np.array([getattr(k, field) for k in _KINDS], dtype=np.float64)
        return table[kind]

    def lognormal(field: str) -> _Floats:
        median, sigma, low, high = per_kind(field).T
        drawn: _Floats = np.clip(median * np.exp(sigma * rng.standard_normal(n)), low, high)
        return drawn

    trips = np.rint(lognormal("trips")).astype(np.int32)
    a, b, low, high = per_kind("business").T
    business_share = np.round(np.clip(rng.beta(a, b), low, high), 3)
    avg_fare = np.round(lognormal("fare"), 2)
    extras = rng.lognormal(0.05, 0.08, n)  # seats, bags and change fees on top of fares
    spend = np.round(trips * avg_fare * extras, 2)
    bought = rng.random(n) >= per_kind("duty_free_zero")
    duty_free = np.round(lognormal("duty_free") * bought, 2)
    lounge = rng.poisson(trips * per_kind("lounge_per_trip")).astype(np.int32)
    shape, scale = per_kind("tenure").T
    tenure = np.round(np.clip(rng.gamma(shape, scale), 0.0, 25.0), 1)
    tier = _pick(rng, np.array([k.tiers for k in _KINDS]), kind)
    complaints = rng.poisson(0.05 + 0.01 * trips).astype(np.int32)
    return {
        "tier": _enum(TIERS, tier),
        "trips_12m": pl.Series(trips),
        "spend_12m": pl.Series(spend),
        "business_share": pl.Series(business_share),
        "avg_fare": pl.Series(avg_fare),
        "duty_free_spend_12m": pl.Series(duty_free),
        "lounge_visits_12m": pl.Series(lounge),
        "tenure_years": pl.Series(tenure),
        "complaints_12m": pl.Series(complaints),
    }


def _names(rng: np.random.Generator, language: _Ints, gender: _Ints) -> tuple[pl.Series, pl.Series]:
    """Given names matching sex and a language-typical style; surnames for e-mail."""
    n = len(language)
    english_share = np.array([_ENGLISH_NAME_SHARE[lang] for lang in LANGUAGES])[language]
    native_style = np.array([_STYLES.index(_NATIVE_STYLE[lang]) for lang in LANGUAGES])[language]
    style = np.where(rng.random(n) < english_share, _STYLES.index("english"), native_style)
    sexes = ("female", "male")
    binary = np.isin(gender, [GENDERS.index(g) for g in sexes])
    sex = np.where(binary, gender, rng.integers(0, len(sexes), n))  # "other": either list
    pools = [_NAMES[(s, g)] for s in _STYLES for g in sexes]
    first = _from_pools(rng, pools, style * len(sexes) + sex)
    surname_style = np.where(language == LANGUAGES.index("en"), style, native_style)
    last = _from_pools(rng, [_SURNAMES[s] for s in _STYLES], surname_style)
    return first, last


def _from_pools(rng: np.random.Generator, pools: list[tuple[str, ...]], pool: _Ints) -> pl.Series:
    """Pick uniformly within the pool each row names."""
    sizes = np.array([len(p) for p in pools])
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    index = offsets[pool] + (rng.random(len(pool)) * sizes[pool]).astype(np.int64)
    return pl.Series([name for p in pools for name in p]).gather(index)


def _channels(
    rng: np.random.Generator, young: npt.NDArray[np.bool_]
) -> tuple[_Ints, npt.NDArray[np.bool_]]:
    """Preferred channel by age group, plus a mask over CHANNELS of allowed ones."""
    n = len(young)
    table = np.array([_CHANNEL_SHARES[False], _CHANNEL_SHARES[True]])
    preferred = _pick(rng, table, young.astype(np.int64))
    extras = rng.choice(len(_EXTRA_CHANNEL_SHARES), size=n, p=_EXTRA_CHANNEL_SHARES)
    email_only = rng.random(n) < _EMAIL_ONLY_SHARE
    preferred = np.where(email_only, CHANNELS.index("email"), preferred)
    # Only the email-only group may have email alone, so it stays a small, known share.
    extras = np.where(preferred == CHANNELS.index("email"), np.maximum(extras, 1), extras)
    extras = np.where(email_only, 0, extras)
    keys = rng.random((n, len(CHANNELS)))
    keys[np.arange(n), preferred] = 2.0  # the preferred channel always ranks first
    last_kept = len(CHANNELS) - 1 - extras
    threshold = np.take_along_axis(np.sort(keys, axis=1), last_kept[:, None], axis=1)
    return preferred, keys >= threshold


def _channel_lists(allowed: npt.NDArray[np.bool_]) -> pl.Series:
    """List column from a (rows, CHANNELS) mask, in CHANNELS order.

    Four channels make only sixteen subsets: build each list once, gather by bitmask.
    """
    bits = 1 << np.arange(len(CHANNELS))
    subsets = [
        [c for i, c in enumerate(CHANNELS) if mask & (1 << i)] for mask in range(1 << len(CHANNELS))
    ]
    lists = pl.Series(subsets, dtype=pl.List(pl.Enum(CHANNELS)))
    return lists.gather(allowed.astype(np.int64) @ bits)


def _pick(rng: np.random.Generator, table: _Floats, group: _Ints) -> _Ints:
    """One categorical draw per row, from the probabilities in its group's row of `table`."""
    cumulative = np.cumsum(table, axis=1)[:, :-1]
    # Thresholds at the total belong to zero-probability tails: never cross them, even
    # when rounding leaves the total a hair below 1.
    cumulative[np.isclose(cumulative, 1.0)] = np.inf
    crossed: npt.NDArray[np.bool_] = rng.random((len(group), 1)) >= cumulative[group]
    picked: _Ints = crossed.sum(axis=1, dtype=np.int64)
    return picked


def _enum(categories: tuple[str, ...], codes: _Ints) -> pl.Series:
    """Enum Series from integer codes into `categories`."""
    return pl.Series(categories, dtype=pl.Enum(categories)).gather(codes)


def _phone_expr(home: pl.Expr, digits: pl.Expr) -> pl.Expr:
    """Fake phone number in each home's national format, filled from random digits.

    Formats are split into prefix, up to three digit groups and their separators, looked
    up per row, so one pass of string slicing serves every format.
    """
    parts = [_phone_parts(h[4]) for h in _HOMES]

    def lookup(column: int) -> pl.Expr:
        return pl.lit(pl.Series([p[column] for p in parts])).gather(home)

    prefix, length_1, sep_1, length_2, sep_2, length_3 = (lookup(c) for c in range(6))
    text = digits.cast(pl.String).str.zfill(_PHONE_DIGITS)
    return pl.concat_str(
        prefix,
        text.str.slice(0, length_1),
        sep_1,
        text.str.slice(length_1, length_2),
        sep_2,
        text.str.slice(length_1 + length_2, length_3),
    )


def _phone_parts(phone_format: str) -> tuple[str, int, str, int, str, int]:
    """Split "+886 9xx xxx xxx" into ("+886 9", 2, " ", 3, " ", 3)."""
    match = _PHONE_FORMAT.fullmatch(phone_format)
    if match is None:
        raise ValueError(f"bad phone format {phone_format!r}")
    prefix, group_1, sep_1, group_2, sep_2, group_3 = (g or "" for g in match.groups())
    if len(group_1) + len(group_2) + len(group_3) > _PHONE_DIGITS:
        raise ValueError(f"phone format {phone_format!r} needs too many digits")
    return prefix, len(group_1), sep_1, len(group_2), sep_2, len(group_3)
