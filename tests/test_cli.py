"""The command line, through click's runner and as a real server process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
from click.testing import CliRunner

from api.cli import cli
from segmentation.profiles import PROFILE_SCHEMA
from tests import servers
from tests.servers import call

ROOT = Path(__file__).resolve().parents[1]


def test_profiles_synth_is_deterministic(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in ("a.parquet", "b.parquet"):
        result = runner.invoke(
            cli, ["profiles", "synth", "--n", "500", "--seed", "3", "-o", str(tmp_path / name)]
        )
        assert result.exit_code == 0, result.output
        assert "wrote 500 profiles" in result.output
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert list(pl.read_parquet(tmp_path / "a.parquet").columns)[: len(PROFILE_SCHEMA)] == list(
        PROFILE_SCHEMA
    )


def test_demo_tells_the_story_and_replays_without_issuing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = CliRunner().invoke(cli, ["--data", str(data), "demo"], terminal_width=160)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "bootstrap: synthesizing 10,000 profiles" in out
    for step, delay in enumerate((30, 60, 100, 140, 190), start=1):
        assert f"step {step}: delay {delay} min, 300 decisions issued" in out
    assert "lounge-1h" in out and "dutyfree-5" in out and "meal-12" in out
    # every step a perk of each segment's own type, and a count of why where there is none
    assert all(p in out for p in ("upgrade-seat", "lounge-3h", "dutyfree-25", "meal-50"))
    assert "perk: holdout x" in out  # "no perk: holdout x9", a count instead of a blank
    assert "[en, " in out and ("[zh-Hant, " in out or "[zh-Hans, " in out)
    assert "0 new decisions, same answer as before: yes" in out
    assert "1,500 rows" in out
    # a second run reuses the folder and plays a new incident
    again = CliRunner().invoke(cli, ["--data", str(data), "demo"], terminal_width=160)
    assert again.exit_code == 0 and "bootstrap:" not in again.output
    assert "0 new decisions, same answer as before: yes" in again.output


def test_data_folder_comes_from_the_environment(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["db", "upgrade"], env={"MAKEGOOD_DATA": str(tmp_path / "d")})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d" / "makegood.db").exists()


def test_errors_are_one_line_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "--data", str(blocker / "sub"), "db", "upgrade"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr


def test_serve_bootstraps_an_empty_folder_and_answers(tmp_path: Path) -> None:
    env = {**os.environ, "MAKEGOOD_DATA": str(tmp_path / "data")}
    env.pop("MAKEGOOD_DATABASE_URL", None)
    log = tmp_path / "server.log"
    server, base = servers.start(env, log)
    try:
        status, ready = call("GET", f"{base}/readyz")
        assert status == 200 and ready["profiles"] == 10_000
        key = (tmp_path / "data" / "local-admin.key").read_text().strip()
        assert key in log.read_text()  # printed once at first start
        assert (tmp_path / "data" / "local-admin.key").stat().st_mode & 0o777 == 0o600
        assert call("GET", f"{base}/v1/incidents/x")[0] == 401
        ids = [f"c{i:06d}" for i in range(1, 41)]
        incident = {
            "incident_id": "MG123-2026-11-23",
            "kind": "flight_delay",
            "occurred_at": "2026-11-23T07:05:00Z",
            "facts": {"delay_minutes": 50, "flight": "MG123"},
            "customers": ids,
        }
        status, created = call("POST", f"{base}/v1/incidents", key, incident)
        assert status == 201 and created["issued"] == 40
        patch = {"facts": {"delay_minutes": 100, "flight": "MG123"}}
        first = call("PATCH", f"{base}/v1/incidents/MG123-2026-11-23", key, patch)[1]
        second = call("PATCH", f"{base}/v1/incidents/MG123-2026-11-23", key, patch)[1]
        assert first["issued"] == 40 and second["issued"] == 0
        assert first["decisions"] == second["decisions"]
        status, page = call("GET", f"{base}/v1/incidents/MG123-2026-11-23/decisions?limit=500", key)
        assert status == 200 and page["total"] == 80
        status, schema = call("GET", f"{base}/schema/openapi.json")
        assert status == 200 and "/v1/incidents" in schema["paths"]
        assert call("GET", f"{base}/v1/profiles/{ids[0]}?reveal=true", key)[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text()
    assert "bootstrap: synthesizing 10,000 profiles" in text
    # personal data never reaches the log
    profiles = pl.read_parquet(next((tmp_path / "data" / "profiles").glob("*.parquet")))
    served = profiles.filter(pl.col("customer_id").is_in(ids))
    for column in ("email", "phone"):
        assert not any(value in text for value in served[column].to_list())
    # structured: every line is one JSON object; ids are there, first names never
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert any(e.get("path", "").startswith(f"/v1/profiles/{ids[0]}") for e in entries)
    for name in set(served["first_name"].to_list()):
        assert not re.search(rf"\b{re.escape(name)}\b", text), name


def test_incidents_apply_offline_is_exactly_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    incident = {
        "incident_id": "MG123-2026-11-23",
        "kind": "flight_delay",
        "occurred_at": "2026-11-23T07:05:00Z",
        "facts": {"delay_minutes": 95, "flight": "MG123"},
        "customers": [f"c{i:06d}" for i in range(1, 51)],
    }
    path = tmp_path / "incident.json"
    path.write_text(json.dumps(incident))
    runner = CliRunner()
    first = runner.invoke(
        cli,
        [
            "--data",
            str(data),
            "incidents",
            "apply",
            str(path),
            "--format",
            "ndjson",
            "-o",
            str(tmp_path / "d.ndjson"),
        ],
    )
    assert first.exit_code == 0, first.output
    assert "step 3, 50 new decisions" in first.output
    rows = [json.loads(line) for line in (tmp_path / "d.ndjson").read_text().splitlines()]
    assert len(rows) == 50 and {r["step"] for r in rows} == {3}
    again = runner.invoke(
        cli,
        [
            "--data",
            str(data),
            "incidents",
            "apply",
            str(path),
            "--format",
            "parquet",
            "-o",
            str(tmp_path / "d.parquet"),
        ],
    )
    assert again.exit_code == 0 and "0 new decisions" in again.output
    stored = pl.read_parquet(tmp_path / "d.parquet")
    assert sorted(stored["perk_code"].drop_nulls()) == sorted(
        r["perk"]["code"] for r in rows if r["perk"]
    )
    path.write_text(json.dumps(incident | {"kind": "volcano"}))
    bad = runner.invoke(cli, ["--data", str(data), "incidents", "apply", str(path)])
    assert bad.exit_code != 0 and "kind" in bad.output and "Traceback" not in bad.output
