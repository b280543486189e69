"""Profile imports say their mode: upsert adds and updates, replace is guarded, rollback undoes.

A one-row import used to replace every profile, and incidents for anyone else then failed
as unknown customers. These tests go through HTTP and the command line on a data folder
whose served snapshot is the shared synthetic population.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from api.app import create_app
from api.cli import cli
from api.runtime import Runtime
from segmentation.snapshots import Snapshots

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def csv_bytes(frame: pl.DataFrame) -> bytes:
    lists = [n for n, t in frame.schema.items() if isinstance(t, pl.List)]
    buffer = io.BytesIO()
    frame.with_columns(pl.col(n).cast(pl.List(pl.String)).list.join("|") for n in lists).write_csv(
        buffer
    )
    return buffer.getvalue()


@pytest.fixture
def served(runtime: Runtime) -> pl.DataFrame:
    """The runtime's population written as the data folder's served snapshot."""
    profiles = runtime.book.frame.drop("segment", "segment_description", "_id_hash")
    Snapshots(runtime.settings.data_dir).save(profiles)
    return profiles


@pytest.fixture
def client(
    runtime: Runtime, admin_headers: dict[str, str], served: pl.DataFrame
) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def upload(client: TestClient[Any], frame: pl.DataFrame, **form: str) -> tuple[int, dict[str, Any]]:
    files = {"file": ("profiles.csv", csv_bytes(frame), "text/csv")}
    response = client.post("/v1/profiles/import", files=files, data=form)
    return response.status_code, response.json()


def incident(customers: list[str], incident_id: str = "MG7-2026-11-23") -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "kind": "flight_delay",
        "occurred_at": "2026-11-23T07:05:00+08:00",
        "facts": {"delay_minutes": 60, "flight": "MG7", "origin": "TPE"},
        "customers": customers,
    }


@SQLITE_ONLY
def test_a_one_row_import_updates_one_customer_and_everyone_else_is_still_served(
    client: TestClient[Any], runtime: Runtime, served: pl.DataFrame
) -> None:
    one = served.head(1).with_columns(tier=pl.lit("platinum"))
    status, body = upload(client, one)
    assert status == 201, body
    assert (body["mode"], body["added"], body["updated"], body["removed"]) == ("upsert", 0, 1, 0)
    assert body["profiles"] == served.height == len(runtime.book)
    assert Snapshots(runtime.settings.data_dir).load().height == served.height
    who = served["customer_id"][0]
    assert client.get(f"/v1/profiles/{who}").json()["profile"]["tier"] == "platinum"

    others = served["customer_id"].slice(1, 5).to_list()
    decided = client.post("/v1/incidents", json=incident(others))
    assert decided.status_code == 201, decided.text
    assert decided.json()["issued"] == 5


@SQLITE_ONLY
def test_an_upsert_adds_new_ids_and_keeps_what_the_file_does_not_say(
    client: TestClient[Any], served: pl.DataFrame
) -> None:
    known = served.row(2, named=True)
    slim = pl.DataFrame(
        {
            "customer_id": [known["customer_id"], "new-1", "new-2"],
            "language": ["en"] * 3,
            "preferred_channel": ["email"] * 3,
            "allowed_channels": ["email"] * 3,
            "consent_marketing": ["false"] * 3,
            "tier": ["gold"] * 3,
        }
    )
    files = {"file": ("slim.csv", slim.write_csv().encode(), "text/csv")}
    response = client.post("/v1/profiles/import", files=files)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["added"], body["updated"], body["removed"]) == (2, 1, 0)
    assert body["profiles"] == served.height + 2
    shown = client.get(f"/v1/profiles/{known['customer_id']}", params={"reveal": "true"}).json()
    # the file updated the tier; the email and trips it does not carry are kept
    assert shown["profile"]["tier"] == "gold"
    assert shown["profile"]["email"] == known["email"]
    assert shown["profile"]["trips_12m"] == known["trips_12m"]
    assert client.get("/v1/profiles/new-2").json()["profile"]["email"] is None


@SQLITE_ONLY
def test_a_replace_removing_too_many_is_refused_naming_share_and_count(
    client: TestClient[Any], runtime: Runtime, served: pl.DataFrame
) -> None:
    snapshots = Snapshots(runtime.settings.data_dir)
    few = served.head(100)
    status, body = upload(client, few, mode="replace")
    assert status == 409, body
    removed = served.height - 100
    share = f"{removed / served.height:.1%}"
    assert f"{removed:,} of {served.height:,}" in body["detail"] and share in body["detail"]
    assert "10%" in body["detail"] and "force=true" in body["detail"]
    assert body["extra"]["removed"] == removed
    assert len(snapshots.list()) == 1 and len(runtime.book) == served.height

    status, body = upload(client, few, mode="replace", force="true")
    assert status == 201, body
    assert (body["mode"], body["added"], body["updated"], body["removed"]) == (
        "replace",
        0,
        100,
        removed,
    )
    assert len(runtime.book) == 100 and snapshots.load().height == 100


@SQLITE_ONLY
def test_a_replace_within_the_share_needs_no_force(
    client: TestClient[Any], served: pl.DataFrame
) -> None:
    most = served.head(served.height - served.height // 20)  # removes 5%
    status, body = upload(client, most, mode="replace")
    assert status == 201, body
    assert body["removed"] == served.height // 20 and body["profiles"] == most.height


@SQLITE_ONLY
def test_rollback_serves_the_previous_snapshot_again_and_keeps_history(
    client: TestClient[Any], runtime: Runtime, served: pl.DataFrame
) -> None:
    snapshots = Snapshots(runtime.settings.data_dir)
    status, _ = upload(client, served.head(10), mode="replace", force="true")
    assert status == 201 and len(runtime.book) == 10

    response = client.post("/v1/profiles/rollback")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["restored"] == "snapshot-0001.parquet"
    assert body["snapshot"] == "snapshot-0003.parquet"
    assert (body["added"], body["updated"], body["removed"]) == (served.height - 10, 10, 0)
    assert body["profiles"] == served.height == len(runtime.book)
    assert [p.name for p in snapshots.list()] == [
        "snapshot-0001.parquet",
        "snapshot-0002.parquet",  # the bad import stays on record
        "snapshot-0003.parquet",
    ]
    assert snapshots.load().equals(snapshots.load(1))
    decided = client.post("/v1/incidents", json=incident(served["customer_id"][-3:].to_list()))
    assert decided.status_code == 201, decided.text

    # nothing was served before snapshot 1: a second rollback has nowhere to go
    again = client.post("/v1/profiles/rollback")
    assert again.status_code == 409 and "nothing to roll back to" in again.json()["detail"]
    assert len(snapshots.list()) == 3


@SQLITE_ONLY
def test_rollback_twice_goes_two_steps_back(tmp_path: Path, served: pl.DataFrame) -> None:
    snapshots = Snapshots(tmp_path / "data")
    snapshots.save(served.head(30))  # 1
    snapshots.save(served.head(20))  # 2
    snapshots.save(served.head(10))  # 3, the newest
    first = snapshots.stage_rollback()
    snapshots.commit(first)  # 4 = 2
    second = snapshots.stage_rollback()
    snapshots.commit(second)  # 5 = 1, not 3 again
    assert (first.restores, second.restores) == (2, 1)
    assert snapshots.load().height == 30
    snapshots.save(served.head(5))  # 6, an import after the rollbacks
    assert snapshots.stage_rollback().profiles.height == 30  # back to what 5 served


def cli_import(data: Path, file: Path, *args: str) -> Any:
    return CliRunner().invoke(
        cli, ["--data", str(data), "profiles", "import", str(file), *args], terminal_width=200
    )


@SQLITE_ONLY
def test_cli_import_modes_counts_force_and_rollback(tmp_path: Path, served: pl.DataFrame) -> None:
    data = tmp_path / "cli-data"
    everyone, few = tmp_path / "everyone.parquet", tmp_path / "few.parquet"
    served.head(200).write_parquet(everyone)
    served.head(20).with_columns(tier=pl.lit("basic")).write_parquet(few)
    assert cli_import(data, everyone).exit_code == 0

    upserted = cli_import(data, few)
    assert upserted.exit_code == 0, upserted.output
    assert "upsert: 0 added, 20 updated, 0 removed (200 profiles, were 200)" in upserted.output

    refused = cli_import(data, few, "--mode", "replace")
    assert refused.exit_code == 1
    assert "replace would remove 180 of 200 profiles (90.0%)" in refused.output
    assert "--force" in refused.output and "nothing written" in refused.output
    assert len(Snapshots(data).list()) == 2

    forced = cli_import(data, few, "--mode", "replace", "--force")
    assert forced.exit_code == 0, forced.output
    assert "replace: 0 added, 20 updated, 180 removed (20 profiles, were 200)" in forced.output
    assert Snapshots(data).load().height == 20

    rolled = CliRunner().invoke(cli, ["--data", str(data), "profiles", "rollback"])
    assert rolled.exit_code == 0, rolled.output
    assert "snapshot 0002 restored" in rolled.output
    assert "rollback: 180 added, 20 updated, 0 removed (200 profiles, were 20)" in rolled.output
    assert Snapshots(data).load().height == 200 and len(Snapshots(data).list()) == 4


@SQLITE_ONLY
def test_the_removal_share_is_configurable(
    tmp_path: Path, served: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "cli-data"
    everyone, half = tmp_path / "everyone.parquet", tmp_path / "half.parquet"
    served.head(100).write_parquet(everyone)
    served.head(50).write_parquet(half)
    assert cli_import(data, everyone).exit_code == 0
    assert cli_import(data, half, "--mode", "replace").exit_code == 1
    monkeypatch.setenv("MAKEGOOD_MAX_REMOVED_SHARE", "0.5")
    allowed = cli_import(data, half, "--mode", "replace")
    assert allowed.exit_code == 0, allowed.output


def test_derived_profiles_upsert_facts_and_keep_what_a_transaction_log_cannot_know(
    tmp_path: Path,
) -> None:
    slice_ = Path(__file__).parent / "data" / "retail_slice.parquet"
    derive = [
        "profiles", "derive", str(slice_), "--customer", "CustomerID", "--time", "InvoiceDate",
        "--amount", "Quantity*UnitPrice", "--invoice", "InvoiceNo", "--as-of", "2011-12-10",
    ]  # fmt: skip
    data, derived = tmp_path / "data", tmp_path / "derived.parquet"
    runner = CliRunner()
    assert runner.invoke(cli, ["--data", str(data), *derive, "-o", str(derived)]).exit_code == 0
    # the CRM knows two of these customers by name, channel and consent, with stale facts
    known = (
        pl.read_parquet(derived)
        .head(2)
        .with_columns(
            first_name=pl.lit("Ana"),
            language=pl.lit("zh-Hant"),
            consent_marketing=pl.lit(True),
            trips_12m=pl.lit(0, pl.Int32),
        )
    )
    crm = tmp_path / "crm.parquet"
    known.write_parquet(crm)
    assert cli_import(data, crm).exit_code == 0

    loaded = runner.invoke(cli, ["--data", str(data), *derive, "--import"])
    assert loaded.exit_code == 0, loaded.output
    assert "upsert: 193 added, 2 updated, 0 removed (195 profiles, were 2)" in loaded.output
    served = Snapshots(data).load()
    fresh = pl.read_parquet(derived)
    both = served.join(fresh, on="customer_id", suffix="_derived").filter(
        pl.col("customer_id").is_in(known["customer_id"].to_list())
    )
    assert both["first_name"].to_list() == ["Ana", "Ana"]
    assert both["language"].cast(pl.String).to_list() == ["zh-Hant", "zh-Hant"]
    assert both["consent_marketing"].to_list() == [True, True]
    assert both["trips_12m"].to_list() == both["trips_12m_derived"].to_list()
