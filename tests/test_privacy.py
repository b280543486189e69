"""Personal data: erasure keeps the ledger's sums, export tells all, objection stops profiling."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime
from offers.ledger.erasure import PLACEHOLDER, pseudonym
from offers.ledger.schema import metadata
from segmentation.book import ProfileBook
from segmentation.model import Segmentation
from segmentation.profiles import UNSEGMENTED
from segmentation.snapshots import Snapshots

INCIDENT = "MG9-2026-11-25"


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    folder = runtime.settings.data_dir / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    profiles = runtime.book.frame.drop("segment", "segment_description", "_id_hash")
    for n in (1, 2):  # two versions: erasure must reach every one
        profiles.write_parquet(folder / f"snapshot-{n:04d}.parquet")
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def incident(ids: list[str], delay: int) -> dict[str, Any]:
    return {
        "incident_id": INCIDENT,
        "kind": "flight_delay",
        "occurred_at": "2026-11-25T07:05:00Z",
        "facts": {"delay_minutes": delay, "flight": "MG9"},
        "customers": ids,
    }


def rows_with(runtime: Runtime, customer_id: str) -> int:
    with runtime.engine.connect() as conn:
        return sum(
            conn.execute(
                sa.select(sa.func.count()).where(t.c.customer_id == customer_id)
            ).scalar_one()
            for t in metadata.sorted_tables
            if "customer_id" in t.c
        )


def test_export_then_erase_keeps_counts_and_costs(
    client: TestClient[Any], runtime: Runtime
) -> None:
    ids = runtime.book.frame["customer_id"].to_list()[:6]
    who = runtime.book.one(ids[0])
    assert who is not None
    name = who["first_name"]
    replay = {"Idempotency-Key": "desk-7"}
    created = client.post("/v1/incidents", json=incident(ids, 50), headers=replay)
    assert created.status_code == 201 and name in created.text
    patched = client.patch(
        f"/v1/incidents/{INCIDENT}", json={"facts": {"delay_minutes": 95, "flight": "MG9"}}
    )
    assert patched.status_code == 200, patched.text
    before = client.get(f"/v1/incidents/{INCIDENT}").json()

    export = client.get(f"/v1/profiles/{ids[0]}/export")
    assert export.status_code == 200, export.text
    held = export.json()
    assert held["profile"]["email"] == who["email"] and held["segment"]["name"] == who["segment"]
    assert [d["incident_id"] for d in held["ledger"]["decisions"]] == [INCIDENT] * 2
    assert any(name in d["text"] for d in held["ledger"]["decisions"])

    erased = client.delete(f"/v1/profiles/{ids[0]}")
    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert (report["profile_files"], report["profile_rows"]) == (2, 2)
    assert report["pseudonym"] == pseudonym(ids[0]) and report["ledger_rows"]["decisions"] == 2
    assert report["texts"] == 2 and report["replays"] == 1

    for path in Snapshots(runtime.settings.data_dir).list():
        assert ids[0] not in pl.read_parquet(path)["customer_id"].to_list()
    assert rows_with(runtime, ids[0]) == 0
    alias = runtime.ledger.decisions(INCIDENT).filter(pl.col("customer_id") == pseudonym(ids[0]))
    assert alias.height == 2 and all(name not in t and PLACEHOLDER in t for t in alias["text"])
    after = client.get(f"/v1/incidents/{INCIDENT}").json()
    assert (after["decisions"], after["spent"], after["steps"]) == (
        before["decisions"],
        before["spent"],
        before["steps"],
    )
    again = client.post("/v1/incidents", json=incident(ids, 50), headers=replay)
    assert again.status_code == 201 and ids[0] not in again.text
    assert client.get(f"/v1/profiles/{ids[0]}").status_code == 404
    assert client.get(f"/v1/profiles/{ids[0]}/export").status_code == 404
    assert client.delete(f"/v1/profiles/{ids[0]}").status_code == 404
    assert client.get(f"/v1/profiles/{ids[1]}").status_code == 200  # others untouched


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_objectors_are_not_segmented_and_get_the_base_offer_only(
    client: TestClient[Any], runtime: Runtime, model: Segmentation
) -> None:
    frame = runtime.book.frame.drop("segment", "segment_description", "_id_hash")
    # the customers most likely to get a special offer: platinum and business travellers
    chosen = frame.sort("tier", "business_share", descending=True)["customer_id"][:20]
    objecting = frame.with_columns(objects_to_profiling=pl.col("customer_id").is_in(chosen))
    runtime.book = ProfileBook(objecting, model)
    profile = client.get(f"/v1/profiles/{chosen[0]}").json()
    assert profile["segment"] == {"name": UNSEGMENTED, "description": "objected to profiling"}
    others = frame.filter(~pl.col("customer_id").is_in(chosen))["customer_id"][:20]
    ids = [*chosen.to_list(), *others.to_list()]
    client.post("/v1/incidents", json=incident(ids, 100))  # step 3: segment and tier rules apply
    decided = runtime.ledger.decisions(INCIDENT)
    mine = decided.filter(pl.col("customer_id").is_in(chosen))
    assert set(mine["rule_id"].drop_nulls()) <= {"fallback-meal"} and mine.height == 20
    assert set(mine["segment"]) == {UNSEGMENTED}
    rest = decided.filter(~pl.col("customer_id").is_in(chosen))
    assert set(rest["rule_id"].drop_nulls()) - {"fallback-meal"}  # the others are profiled


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_objection_column_means_no_objection(runtime: Runtime, model: Segmentation) -> None:
    frame = runtime.book.frame.drop("segment", "segment_description", "_id_hash").head(50)
    plain = model.assign(frame)
    nulls = model.assign(frame.with_columns(objects_to_profiling=pl.lit(None, pl.Boolean)))
    assert UNSEGMENTED not in plain["segment"].to_list()
    assert plain["segment"].to_list() == nulls["segment"].to_list()
