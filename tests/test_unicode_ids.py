"""Ids are text: any Unicode id works over HTTP, survives a restart, or is refused by rule.

An import with the customer id `josé-1` once answered 500 after writing its snapshot, and
the server then could not start on that folder. Here the app is built again from the same
data folder (what `makegood serve` does at start) and decides for those customers.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from segmentation.model import Segmentation, train
from segmentation.registry import Registry
from segmentation.snapshots import Snapshots
from segmentation.spec import Feature
from segmentation.synth import synth_profiles

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

UNICODE_IDS = ["josé-1", "陈-7"]


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def profiles_csv(ids: list[str], **columns: list[Any]) -> bytes:
    frame = (
        synth_profiles(len(ids), 11).drop("latent_kind").with_columns(customer_id=pl.Series(ids))
    )
    frame = frame.with_columns(pl.Series(k, v) for k, v in columns.items())
    buffer = io.BytesIO()
    frame.with_columns(
        pl.col("allowed_channels").cast(pl.List(pl.String)).list.join("|")
    ).write_csv(buffer)
    return buffer.getvalue()


def incident(incident_id: str, customers: list[str], delay: int = 60) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "kind": "flight_delay",
        "occurred_at": "2026-11-23T07:05:00+08:00",
        "facts": {"delay_minutes": delay, "flight": "MG5", "origin": "TPE"},
        "customers": customers,
    }


def test_unicode_customer_ids_import_survive_a_restart_and_are_decided(
    client: TestClient[Any],
    runtime: Runtime,
    model: Segmentation,
    admin_headers: dict[str, str],
) -> None:
    files = {"file": ("unicode.csv", profiles_csv(UNICODE_IDS), "text/csv")}
    imported = client.post("/v1/profiles/import", files=files)
    assert imported.status_code == 201, imported.text
    assert imported.json()["added"] == 2

    # start again on the same folder, as `makegood serve` would
    registry = Registry(runtime.settings.data_dir / "models")
    registry.save(model)
    registry.promote(model.card.version)
    restarted = open_runtime(Settings(data_dir=runtime.settings.data_dir))
    try:
        with TestClient(app=create_app(restarted)) as again:
            again.headers.update(admin_headers)
            shown = again.get(f"/v1/profiles/{quote('josé-1')}")
            assert shown.status_code == 200 and shown.json()["customer_id"] == "josé-1"
            decided = again.post("/v1/incidents", json=incident("MG5-2026-11-23", UNICODE_IDS))
            assert decided.status_code == 201, decided.text
            assert {d["customer_id"] for d in decided.json()["decisions"]} == set(UNICODE_IDS)
    finally:
        restarted.close()


def test_a_unicode_incident_id_is_created_read_and_patched(
    client: TestClient[Any], runtime: Runtime
) -> None:
    customers = runtime.book.frame["customer_id"].head(4).to_list()
    created = client.post("/v1/incidents", json=incident("Zürich-1", customers))
    assert created.status_code == 201, created.text
    assert created.json()["incident_id"] == "Zürich-1"
    path = f"/v1/incidents/{quote('Zürich-1')}"
    read = client.get(path)
    assert read.status_code == 200 and read.json()["incident_id"] == "Zürich-1"
    patched = client.patch(path, json={"facts": {"delay_minutes": 200, "flight": "MG5"}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["incident_id"] == "Zürich-1" and patched.json()["issued"] == 4


@pytest.mark.parametrize(
    ("bad_id", "rule"),
    [
        ("nul\u0000id", "control characters"),
        ("tab\there", "control characters"),
        ("bell\u0007", "control characters"),
        ("x" * 65, "longer than 64 characters"),
    ],
    ids=["nul", "tab", "bell", "65-characters"],
)
def test_unusable_customer_ids_are_refused_naming_the_rule(
    client: TestClient[Any], runtime: Runtime, bad_id: str, rule: str
) -> None:
    rows = [{"customer_id": i} for i in ("ok-1", bad_id, "ok-3")]
    for row in rows:
        row |= {
            "language": "en",
            "preferred_channel": "sms",
            "allowed_channels": ["sms"],
            "consent_marketing": True,
            "tier": "gold",
        }
    body = "\n".join(json.dumps(r) for r in rows).encode()
    response = client.post("/v1/profiles/import", files={"file": ("p.ndjson", body)})
    assert response.status_code == 422, response.text
    (error,) = response.json()["extra"]
    assert (error["row"], error["column"]) == (2, "customer_id") and rule in error["reason"]
    assert Snapshots(runtime.settings.data_dir).latest() is None


def test_a_first_name_longer_than_the_sms_budget_allows_is_refused(
    client: TestClient[Any], runtime: Runtime
) -> None:
    names = ["Mei", "A" * 51]
    files = {"file": ("long.csv", profiles_csv(["a-1", "a-2"], first_name=names), "text/csv")}
    response = client.post("/v1/profiles/import", files=files)
    assert response.status_code == 422, response.text
    (error,) = response.json()["extra"]
    assert (error["row"], error["column"]) == (2, "first_name")
    assert "longer than 50 characters" in error["reason"]
    assert Snapshots(runtime.settings.data_dir).latest() is None

    names = ["Mei", "A" * 50]
    files = {"file": ("ok.csv", profiles_csv(["a-1", "a-2"], first_name=names), "text/csv")}
    assert client.post("/v1/profiles/import", files=files).status_code == 201


@pytest.fixture
def scored(population: pl.DataFrame, runtime: Runtime) -> Runtime:
    """The runtime serving a segmentation that reads a partner's `score` column."""
    scored = population.drop("latent_kind").with_columns(score=pl.int_range(pl.len()) % 7 * 1.0)
    features = [Feature(column="trips_12m", transform="log1p"), Feature(column="score")]
    runtime.model = train(scored, version="seg-0009", k=3, seed=7, features=features)
    Snapshots(runtime.settings.data_dir).save(scored)
    runtime.reload_profiles()
    return runtime


def test_a_load_the_served_model_cannot_segment_writes_nothing(
    client: TestClient[Any], scored: Runtime
) -> None:
    """Everything that can fail runs before the snapshot is written: the folder stays servable."""
    snapshots = Snapshots(scored.settings.data_dir)
    files = {"file": ("no-score.csv", profiles_csv(["s-1", "s-2"]), "text/csv")}
    form = {"mode": "replace", "force": "true"}
    response = client.post("/v1/profiles/import", files=files, data=form)
    assert response.status_code == 422, response.text
    assert "score" in response.json()["detail"]
    assert [p.name for p in snapshots.list()] == ["snapshot-0001.parquet"]
    assert len(scored.book) == snapshots.load().height

    # an upsert keeps the score of everyone already served; new ids have none (null)
    response = client.post("/v1/profiles/import", files=files)
    assert response.status_code == 201, response.text


def test_the_rejects_file_is_written_only_when_the_load_succeeds(
    client: TestClient[Any], runtime: Runtime, tmp_path: Path
) -> None:
    snapshots = Snapshots(runtime.settings.data_dir)
    snapshots.save(runtime.book.frame.drop("segment", "segment_description", "_id_hash"))
    content = profiles_csv(["r-1", "r-2", "r-3"], tier=["gold", "diamond", "gold"])
    response = client.post(
        "/v1/profiles/import",
        files={"file": ("r.csv", content)},
        data={"quarantine": "true", "mode": "replace"},
    )
    assert response.status_code == 409, response.text
    assert not list(snapshots.folder.glob("rejects-*")) and len(snapshots.list()) == 1
