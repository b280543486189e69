"""Segment-appropriate perks on data shaped unlike the synthetic population, at every step.

An analyst's passenger file (type of travel, class, loyalty, distance, age, names in three
languages, some missing) is imported through a mapping, segmented with the analyst's own
feature spec and served. The shipped flight table speaks to personas by traits, so it
reaches these segments without a hand edit: business travellers get lounge and upgrade
perks, personal travellers something else, at every 45-minute step and in one late call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from api.app import create_app
from api.cli import cli
from api.keys import KeyStore
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from tests.test_training_k import PASSENGER_SPEC as SPEC  # the analyst's feature spec

PASSENGERS = 2_000

MAPPING = """
[columns]
customer_id = "Passenger"
first_name = "First Name"
language = "Language"
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
preferred_channel = "sms"
allowed_channels = "sms|email"
consent_marketing = true
"""


def survey(n: int = PASSENGERS, seed: int = 26) -> pl.DataFrame:
    """Passengers of one long flight, shaped like a public airline satisfaction survey:
    travel type drives class and loyalty only loosely; distance and age vary."""
    rng = np.random.default_rng(seed)
    business = rng.random(n) < 0.4
    classes = np.where(
        business,
        rng.choice(["Business", "Eco Plus", "Eco"], n, p=[0.8, 0.1, 0.1]),
        rng.choice(["Business", "Eco Plus", "Eco"], n, p=[0.1, 0.2, 0.7]),
    )
    loyal = rng.random(n) < np.where(business, 0.85, 0.5)
    names = rng.choice(["Ana", "Zoë", "陈", "Ólafur", ""], n)
    return pl.DataFrame(
        {
            "Passenger": [f"P{i:05d}" for i in range(n)],
            "First Name": names,
            "Language": rng.choice(["en", "zh-Hans", "zh-Hant"], n, p=[0.6, 0.2, 0.2]),
            "Gender": rng.choice(["Female", "Male"], n),
            "Age": rng.integers(7, 85, n),
            "Customer Type": np.where(loyal, "Loyal Customer", "disloyal Customer"),
            "Type of Travel": np.where(business, "Business travel", "Personal Travel"),
            "Class": classes,
            "Flight Distance": np.round(rng.lognormal(7.0, 0.6, n)).astype(int),
        }
    )


def _cli(data: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--data", str(data), *args], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def airline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, pl.DataFrame]]:
    """The analyst's folder: survey imported, segmented with their spec, promoted, served."""
    root = tmp_path_factory.mktemp("airline")
    data = root / "data"
    passengers = survey()
    passengers.write_csv(root / "survey.csv")
    (root / "map.toml").write_text(MAPPING, encoding="utf-8")
    (root / "spec.toml").write_text(SPEC, encoding="utf-8")
    _cli(data, "profiles", "import", str(root / "survey.csv"), "--mapping", str(root / "map.toml"))
    _cli(data, "segments", "train", "--spec", str(root / "spec.toml"), "--promote")
    runtime = open_runtime(Settings(data_dir=data))
    yield runtime, passengers
    runtime.close()


def _client(runtime: Runtime) -> TestClient[Any]:
    _info, key = KeyStore(runtime.engine).create("desk", "admin", datetime.now(UTC))
    client = TestClient(app=create_app(runtime))
    client.headers["Authorization"] = f"Bearer {key}"
    return client


def _tvd(decisions: list[dict[str, Any]], business: set[str]) -> float:
    """Total variation distance between business and personal travellers' perk mixes."""
    mixes = []
    for group in (True, False):
        perks = Counter(
            (d["perk"] or {}).get("id", "none")
            for d in decisions
            if (d["customer_id"] in business) is group
        )
        total = sum(perks.values())
        mixes.append({p: c / total for p, c in perks.items()})
    keys = set(mixes[0]) | set(mixes[1])
    return 0.5 * sum(abs(mixes[0].get(k, 0.0) - mixes[1].get(k, 0.0)) for k in keys)


def _flight(incident_id: str, delay: int, customers: list[str]) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "kind": "flight_delay",
        "occurred_at": "2026-12-05T07:05:00+00:00",
        "facts": {"delay_minutes": delay, "flight": "MG26", "origin": "TPE"},
        "customers": customers,
    }


def test_every_segment_is_covered_or_named_with_its_size(
    airline: tuple[Runtime, pl.DataFrame],
) -> None:
    runtime, _ = airline
    with _client(runtime) as client:
        shown = client.get("/v1/offer-tables/flight-delay/coverage")
    assert shown.status_code == 200, shown.text
    coverage = shown.json()
    rows = {r["segment"]: r for r in coverage["segments"]}
    assert set(rows) == {s.name for s in runtime.model.card.segments}
    assert sum(r["size"] for r in rows.values()) == PASSENGERS
    assert any(r["persona"] == "business" and r["covered"] for r in rows.values())
    for row in rows.values():
        assert row["covered"] == bool(row["rules"])
    uncovered = [r["segment"] for r in rows.values() if not r["covered"]]
    total = sum(r["size"] for r in rows.values() if r["covered"])
    assert coverage["share"] == pytest.approx(total / PASSENGERS, abs=1e-4)
    assert uncovered, "personal travellers here match no shipped persona: they must be listed"


def test_business_travellers_get_their_own_perks_at_every_step_and_in_one_late_call(
    airline: tuple[Runtime, pl.DataFrame],
) -> None:
    runtime, passengers = airline
    business = set(
        passengers.filter(pl.col("Type of Travel") == "Business travel")["Passenger"].to_list()
    )
    everyone = passengers["Passenger"].to_list()
    texts: list[str] = []
    with _client(runtime) as client:
        created = client.post("/v1/incidents", json=_flight("MG26-STEPS", 30, everyone))
        assert created.status_code == 201, created.text
        steps = [created.json()["decisions"]]
        for delay in (60, 100, 140, 190):
            answer = client.patch(
                "/v1/incidents/MG26-STEPS",
                json={"facts": {"delay_minutes": delay, "flight": "MG26", "origin": "TPE"}},
            )
            assert answer.status_code == 200, answer.text
            steps.append(answer.json()["decisions"])
        late = client.post("/v1/incidents", json=_flight("MG26-LATE", 190, everyone))
        assert late.status_code == 201, late.text
    for number, decisions in enumerate([*steps, late.json()["decisions"]], start=1):
        assert len(decisions) == PASSENGERS
        assert _tvd(decisions, business) >= 0.2, (number, _tvd(decisions, business))
        texts += [d["message"]["text"] for d in decisions if d["message"]]
    lounges = [
        d for d in late.json()["decisions"] if d["perk"] and d["perk"]["id"].startswith("lounge")
    ]
    # segments are as fine as the analyst's features: a personal traveller in a business
    # segment (same class, loyalty and distance) is treated as one, but few are
    share = sum(d["customer_id"] in business for d in lounges) / len(lounges)
    assert lounges and share >= 0.8, share
    assert texts and not any("Dear ," in t or t.startswith((",", "\uff0c")) for t in texts)


def test_a_promotion_that_loses_the_personas_warns_naming_the_segments(
    airline: tuple[Runtime, pl.DataFrame], tmp_path: Path
) -> None:
    """Segments of distance alone mix business and personal travellers: no segment is a
    business traveller any more, so promotion says which segments lost their rules."""
    runtime, _ = airline
    data = runtime.settings.data_dir
    shipped = Path(__file__).parents[1] / "offers" / "catalog" / "defaults" / "offers.toml"
    checked = _cli(data, "offers", "validate", str(shipped))
    assert "coverage of flight-delay" in checked and "only catch-all rules" in checked
    for segment in runtime.model.card.segments:
        assert segment.name in checked
    (tmp_path / "distance.toml").write_text(
        '[[features]]\ncolumn = "Flight Distance"\ntransform = "log1p"\n', encoding="utf-8"
    )
    _cli(data, "segments", "train", "--spec", str(tmp_path / "distance.toml"), "--k", "3")
    promoted = _cli(data, "segments", "promote", "seg-0002")
    assert "coverage of flight-delay: 0% of customers" in promoted
    warning = promoted.split("warning: coverage of offer table flight-delay drops to 0%")[1]
    assert "only catch-all rules reach" in warning
    assert _cli(data, "segments", "rollback").startswith("rolled back: seg-0001")
