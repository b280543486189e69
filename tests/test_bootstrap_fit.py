"""Start-up on an analyst's own data never makes an invalid offer table live.

A shop's folder (profiles derived from real retail transactions, a segmentation trained on
them) does not fit the shipped airline table: its segments have other names. `makegood
serve` once published that table anyway, with its validation errors. Now the table waits as
a draft, start-up warns, and incidents still get the law and an apology, saying why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.keys import KeyStore
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from offers.ledger.versions import Store
from segmentation.derive import derive_profiles
from segmentation.model import train
from segmentation.registry import Registry
from segmentation.spec import Feature

SLICE = Path(__file__).parent / "data" / "retail_slice.parquet"
RETAIL_FEATURES = (
    Feature(column="trips_12m", transform="log1p"),
    Feature(column="spend_12m", transform="log1p"),
    Feature(column="avg_fare", transform="log1p"),
    Feature(column="tenure_years"),
)


def retail_folder(data: Path) -> list[str]:
    """A data folder as an analyst leaves it: shop profiles and a segmentation of them."""
    profiles = derive_profiles(
        SLICE,
        customer="CustomerID",
        time="InvoiceDate",
        amount="Quantity*UnitPrice",
        quantity="Quantity",
        invoice="InvoiceNo",
    )
    (data / "profiles").mkdir(parents=True)
    profiles.write_parquet(data / "profiles" / "snapshot-0001.parquet")
    registry = Registry(data / "models")
    model = train(profiles, version=registry.next_version(), k=3, seed=7, features=RETAIL_FEATURES)
    registry.save(model)
    registry.promote(model.card.version)
    return profiles["customer_id"].head(5).to_list()


@pytest.fixture
def shop(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[tuple[Runtime, list[str]]]:
    customers = retail_folder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="makegood"):
        runtime = open_runtime(Settings(data_dir=tmp_path))
    yield runtime, customers
    runtime.close()


def test_the_shipped_table_waits_as_a_draft_with_its_findings(
    shop: tuple[Runtime, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    runtime, _ = shop
    store = Store(runtime.engine)
    assert store.live() is None, "a table with errors was published"
    [summary] = store.tables()
    assert summary.draft and summary.latest is None
    draft = store.draft(summary.name)
    assert draft is not None and draft.updated_by == "makegood bootstrap"
    warnings = [r.getMessage() for r in caplog.get_records("setup") if r.levelno == logging.WARNING]
    assert any("NOT published" in w and "kept as a draft" in w for w in warnings), warnings
    assert any("unknown segment" in w for w in warnings), warnings


def test_incidents_get_the_law_and_an_apology_while_no_table_is_live(
    shop: tuple[Runtime, list[str]],
) -> None:
    runtime, customers = shop
    _info, key = KeyStore(runtime.engine).create("tests-admin", "admin", datetime.now(UTC))
    body: dict[str, Any] = {
        "incident_id": "MG7-2026-12-05",
        "kind": "flight_delay",
        "occurred_at": "2026-12-05T07:05:00+00:00",
        "facts": {
            "delay_minutes": 200,
            "flight": "MG7",
            "origin": "LHR",
            "destination": "MAD",
            "carrier_country": "GB",
        },
        "customers": customers,
    }
    with TestClient(app=create_app(runtime)) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        assert client.get("/readyz").status_code == 200
        answered = client.post("/v1/incidents", json=body)
        assert answered.status_code == 201, answered.text
        decisions = answered.json()["decisions"]
        listed = client.get("/v1/offer-tables")
    assert {d["customer_id"] for d in decisions} == set(customers)
    for decision in decisions:
        assert decision["message"]["kind"] == "apology" and decision["message"]["text"]
        assert decision["perk"] is None
        assert decision["entitlements"], decision  # EU 261: 3 h late from LHR is owed cash
        assert any(r.startswith("no offer table is live: ") for r in decision["reasons"])
    assert listed.status_code == 200
    assert [(t["name"], t["draft"], t["live"]) for t in listed.json()] == [
        ("flight-delay", True, False)
    ]
