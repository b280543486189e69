"""Start-up on an analyst's own data never makes an invalid offer table live.

A shop's folder (profiles derived from real retail transactions, a segmentation trained on
them) does not fit the shipped airline tables: no segment is a business traveller, a
duty-free shopper or a family. `makegood serve` once published the flight table anyway, with
its validation errors. Now the airline tables wait as drafts, start-up warns, and a flight
incident still gets the law and an apology, saying why; the shop's late orders are served by
the shipped late-order table, whose personas (big spenders, regulars) are in this data.
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
    assert store.live("flight_delay") is None, "a table that fits nobody here was published"
    summaries = {t.name: t for t in store.tables()}
    assert set(summaries) == {"flight-delay", "lost-baggage", "service-outage", "order-late"}
    for name in ("flight-delay", "lost-baggage", "service-outage"):
        assert summaries[name].draft and summaries[name].latest is None, name
        draft = store.draft(name)
        assert draft is not None and draft.updated_by == "makegood bootstrap"
    assert summaries["order-late"].live and summaries["order-late"].kinds == ["order_late"]
    warnings = [r.getMessage() for r in caplog.get_records("setup") if r.levelno == logging.WARNING]
    assert any("NOT published" in w and "kept as a draft" in w for w in warnings), warnings
    assert any("no segment here is any of its personas" in w for w in warnings), warnings


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
        assert any(
            r.startswith("no offer table is live for flight delay incidents")
            for r in decision["reasons"]
        ), decision["reasons"]
    assert listed.status_code == 200
    assert [(t["name"], t["draft"], t["live"]) for t in listed.json()] == [
        ("flight-delay", True, False),
        ("lost-baggage", True, False),
        ("order-late", False, True),
        ("service-outage", True, False),
    ]


def test_a_late_order_gets_a_shop_perk_never_an_airline_one(
    shop: tuple[Runtime, list[str]],
) -> None:
    runtime, _ = shop
    customers = runtime.book.frame["customer_id"].to_list()
    _info, key = KeyStore(runtime.engine).create("tests-admin", "admin", datetime.now(UTC))
    body: dict[str, Any] = {
        "incident_id": "ORDER-WAVE-1",
        "kind": "order_late",
        "occurred_at": "2026-12-05T07:05:00+00:00",
        "facts": {"delay_minutes": 2 * 24 * 60, "reference": "warehouse-outage"},
        "customers": customers,
    }
    with TestClient(app=create_app(runtime)) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        answered = client.post("/v1/incidents", json=body)
        reach = client.get("/v1/offer-tables/order-late/coverage").json()
    # every segment of the shop's own segmentation is listed: reached by rules chosen for
    # it (through a persona), or named as reaching only the catch-all rules
    assert {r["segment"] for r in reach["segments"]} == {
        s.name for s in runtime.model.card.segments
    }
    assert sum(r["size"] for r in reach["segments"]) == len(customers)
    assert any(r["covered"] for r in reach["segments"]), reach
    assert answered.status_code == 201, answered.text
    decisions = answered.json()["decisions"]
    shop_perks = {p.id for p in runtime.table("order_late").perks}
    given = {d["perk"]["id"] for d in decisions if d["perk"]}
    assert given and given <= shop_perks, given
    texts = " ".join(d["message"]["text"] for d in decisions)
    assert "miles" not in texts and "lounge" not in texts and "flight" not in texts
    assert "Dear ," not in texts and ", we" not in texts.replace("customer, we", "")
    assert given & {"store-credit-10", "next-order-20"}, given  # personas reached
