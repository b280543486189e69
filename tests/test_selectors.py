"""Incidents whose customers are named by a selector: everyone, a profile filter, an id file.

Through the real CLI (a bootstrapped data folder) and real HTTP, on SQLite and PostgreSQL:
the selected customers are decided once each, a replay records nothing new, and a bad
column, value or file is refused naming it, with nothing written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from api.app import create_app
from api.cli.main import cli
from api.runtime import Runtime
from offers.selectors import Selector, SelectorError, check
from tests.conftest import postgres_schema

SCHEMA = pl.Schema(
    {
        "customer_id": pl.String,
        "email": pl.String,
        "tier": pl.Enum(["basic", "silver", "gold"]),
        "home_airport": pl.String,
        "trips_12m": pl.Int32,
        "allowed_channels": pl.List(pl.String),
    }
)


@pytest.mark.parametrize(
    ("selector", "field"),
    [
        (Selector(), "customers"),
        (Selector(everyone=True, where={"tier": "gold"}), "customers"),
        (Selector(where={}), "customers.where"),
        (Selector(where={"shoe": "9"}), "customers.where.shoe"),
        (Selector(where={"tier": "diamond"}), "customers.where.tier"),
        (Selector(where={"tier": []}), "customers.where.tier"),
        (Selector(where={"trips_12m": "many"}), "customers.where.trips_12m"),
        (Selector(where={"email": "a@b.c"}), "customers.where.email"),
        (Selector(where={"allowed_channels": "sms"}), "customers.where.allowed_channels"),
    ],
)
def test_a_selector_that_cannot_select_names_the_field(selector: Selector, field: str) -> None:
    with pytest.raises(SelectorError) as caught:
        check(selector, SCHEMA)
    assert caught.value.field == field and str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    "selector",
    [
        Selector(everyone=True),
        Selector(where={"tier": ["gold", "silver"], "home_airport": "TPE"}),
        Selector(where={"trips_12m": 3}),
        Selector(ids_file="ids.parquet"),
    ],
)
def test_a_good_selector_passes(selector: Selector) -> None:
    check(selector, SCHEMA)


# --- the CLI ---------------------------------------------------------------------------

INCIDENT = {
    "kind": "flight_delay",
    "occurred_at": "2026-11-23T07:00:00Z",
    "facts": {"delay_minutes": 50, "flight": "MG1", "origin": "TPE"},
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bootstrapped data folder (10,000 synthetic profiles, a model, the tables)."""
    data = tmp_path_factory.mktemp("selectors") / "data"
    done = CliRunner().invoke(cli, ["--data", str(data), "db", "upgrade"])
    assert done.exit_code == 0, done.output
    path = data.parent / "boot.json"
    path.write_text(json.dumps({**INCIDENT, "incident_id": "BOOT", "customers": ["c000001"]}))
    done = CliRunner().invoke(cli, ["--data", str(data), "incidents", "apply", str(path)])
    assert done.exit_code == 0, done.output
    return data


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The environment that points the CLI at its ledger: the folder's SQLite, or a fresh
    PostgreSQL schema."""
    if request.param == "sqlite":
        yield {}
        return
    with postgres_schema() as url:
        yield {"MAKEGOOD_DATABASE_URL": url}


def _apply(data: Path, env: dict[str, str], incident_id: str, *flags: str) -> Any:
    path = data.parent / f"{incident_id}.json"
    path.write_text(json.dumps({**INCIDENT, "incident_id": incident_id}))
    args = ["--data", str(data), "incidents", "apply", str(path), *flags]
    return CliRunner().invoke(cli, args, env=env)


def _snapshot(data: Path) -> pl.DataFrame:
    return pl.read_parquet(sorted((data / "profiles").glob("snapshot-*.parquet"))[-1])


def test_cli_selectors_decide_who_they_name_once(folder: Path, database: dict[str, str]) -> None:
    profiles = _snapshot(folder)
    everyone = _apply(
        folder,
        database,
        "ALL-1",
        "--everyone",
        "--format",
        "parquet",
        "-o",
        str(folder.parent / "all.parquet"),
    )
    assert everyone.exit_code == 0, everyone.output
    assert f"{profiles.height:,} new decisions" in everyone.output
    written = pl.read_parquet(folder.parent / "all.parquet")
    assert written.height == profiles.height == written["customer_id"].n_unique()
    again = _apply(folder, database, "ALL-1", "--everyone")
    assert again.exit_code == 0 and "0 new decisions" in again.output

    at_tpe = profiles.filter(
        pl.col("home_airport") == "TPE", pl.col("tier").is_in(["gold", "platinum"])
    )
    where = _apply(
        folder, database, "TPE-1", "--where", "home_airport=TPE", "--where", "tier=gold,platinum"
    )
    assert where.exit_code == 0, where.output
    assert f"{at_tpe.height:,} new decisions, {at_tpe.height:,} at this step" in where.output

    ids = folder.parent / "ids.ndjson"
    ids.write_text("".join(f'{{"customer_id": "{i}"}}\n' for i in profiles["customer_id"][:40]))
    listed = _apply(folder, database, "IDS-1", "--ids", str(ids))
    assert listed.exit_code == 0 and "40 new decisions" in listed.output
    replayed = _apply(folder, database, "IDS-1", "--ids", str(ids))
    assert replayed.exit_code == 0 and "0 new decisions, 40 at this step" in replayed.output


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--where", "shoe=9"], "customers.where.shoe: no profile column 'shoe'"),
        (["--where", "tier=diamond"], "customers.where.tier: 'diamond' is not one of"),
        (["--where", "tier"], "--where"),
        (["--everyone", "--where", "tier=gold"], "give one of --everyone, --where, --ids"),
        (["--ids", "BAD"], "customers.ids: bad.ndjson is not a Parquet or NDJSON id file"),
    ],
)
def test_cli_bad_selectors_are_one_error_line(
    folder: Path, database: dict[str, str], flags: list[str], named: str
) -> None:
    bad = folder.parent / "bad.ndjson"
    bad.write_text("not json\n")
    flags = [str(bad) if f == "BAD" else f for f in flags]
    result = _apply(folder, database, "BAD-1", *flags)
    assert result.exit_code != 0 and named in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "Traceback" not in result.output and len(errors) == 1
    status = CliRunner().invoke(cli, ["--data", str(folder), "incidents", "apply", "--help"])
    assert status.exit_code == 0  # nothing half-done: the folder still answers


# --- HTTP ------------------------------------------------------------------------------


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[TestClient[Any]]:
    runtime.settings = msgspec.structs.replace(runtime.settings, sync_limit=500)
    with TestClient(app=create_app(runtime)) as client:
        client.headers.update(admin_headers)
        yield client


def _body(incident_id: str, customers: Any) -> dict[str, Any]:
    return {**INCIDENT, "incident_id": incident_id, "customers": customers}


def _finished(client: TestClient[Any], url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        job = client.get(url).json()
        if job["status"] in ("done", "failed"):
            return job  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def test_http_everyone_is_a_job_and_a_replay_records_nothing(
    client: TestClient[Any], runtime: Runtime
) -> None:
    n = runtime.book.frame.height
    first = client.post("/v1/incidents", json=_body("ALL-1", {"everyone": True}))
    assert first.status_code == 202, first.text
    job = _finished(client, first.headers["Location"])
    assert job["status"] == "done" and job["result"]["issued"] == n
    again = client.post("/v1/incidents", json=_body("ALL-1", {"everyone": True}))
    assert _finished(client, again.headers["Location"])["result"]["issued"] == 0
    assert runtime.ledger.count("ALL-1") == n


def test_http_a_filter_and_an_upload_select_their_customers(
    client: TestClient[Any], runtime: Runtime
) -> None:
    frame = runtime.book.frame
    gold = frame.filter(pl.col("tier") == "gold", pl.col("home_airport") == "TPE")
    assert 0 < gold.height <= 500
    where = {"where": {"tier": "gold", "home_airport": ["TPE"]}}
    made = client.post("/v1/incidents", json=_body("GOLD-1", where))
    assert made.status_code == 201, made.text
    assert made.json()["issued"] == gold.height
    assert {d["customer_id"] for d in made.json()["decisions"]} == set(gold["customer_id"])
    patched = client.patch(
        "/v1/incidents/GOLD-1", json={"facts": INCIDENT["facts"], "customers": where}
    )
    assert patched.status_code == 200 and patched.json()["issued"] == 0

    ids = frame["customer_id"][:30].to_list()
    lines = "".join(json.dumps(i) + "\n" for i in ids).encode()
    sent = client.post("/v1/uploads", files={"file": ("ids.ndjson", lines)})
    assert sent.status_code == 201, sent.text
    upload = sent.json()
    assert upload["customers"] == 30
    again = client.post("/v1/uploads", files={"file": ("ids.ndjson", lines)})
    assert again.json()["upload"] == upload["upload"]  # the same ids, the same upload
    made = client.post("/v1/incidents", json=_body("UP-1", {"upload": upload["upload"]}))
    assert made.status_code == 201 and made.json()["issued"] == 30
    assert runtime.ledger.count("UP-1") == 30


@pytest.mark.parametrize(
    ("customers", "key"),
    [
        ({"where": {"shoe": "9"}}, "customers.where.shoe"),
        ({"where": {"tier": "diamond"}}, "customers.where.tier"),
        ({"everyone": True, "where": {"tier": "gold"}}, "customers"),
        ({"upload": "0" * 64}, "customers.upload"),
    ],
)
def test_http_bad_selectors_are_422_naming_the_field(
    client: TestClient[Any], runtime: Runtime, customers: dict[str, Any], key: str
) -> None:
    answer = client.post("/v1/incidents", json=_body("BAD-1", customers))
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith(f"{key}: ")
    assert runtime.ledger.incident("BAD-1") is None


def test_http_a_bad_id_file_is_422(client: TestClient[Any]) -> None:
    bad = client.post("/v1/uploads", files={"file": ("ids.ndjson", b"not json\n")})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("file: ")
    unknown = client.post("/v1/uploads", files={"file": ("ids.ndjson", b'"nobody"\n')})
    assert unknown.status_code == 422 and "nobody" in unknown.text
    csv = client.post("/v1/uploads", files={"file": ("ids.csv", b"customer_id\nc1\n")})
    assert csv.status_code == 422 and csv.json()["detail"].startswith("file: ")
