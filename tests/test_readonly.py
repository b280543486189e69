"""A read-only data folder: refused at start naming the folder, or a write refused whole.

Tests run as root, which ignores file modes, so the folder is made read-only for real in
two ways: the command runs as `nobody` (setpriv) over a folder root owns, or as root inside
its own mount namespace where the folder is bind-mounted read-only (unshare).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import make_url

from api.app import create_app
from api.runtime import Runtime
from offers.ledger.db import create_engine
from offers.ledger.store import Ledger
from tests.servers import call, free_port, start

ROOT = Path(__file__).resolve().parents[1]
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
IDS = [f"c{i:06d}" for i in range(1, 301)]


def _mounted_read_only(folder: Path) -> list[str]:
    """Run as root in a private mount namespace where `folder` is a read-only bind mount."""
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(folder)]


def _works(command: list[str]) -> bool:
    probe = [*command, sys.executable, "-c", "import api.cli"]
    try:
        return subprocess.run(probe, cwd=ROOT, capture_output=True, check=False).returncode == 0
    except OSError:
        return False


def incident(incident_id: str) -> dict[str, object]:
    return {
        "incident_id": incident_id,
        "kind": "flight_delay",
        "occurred_at": "2026-11-25T07:05:00Z",
        "facts": {"delay_minutes": 95, "flight": "MG1"},
        "customers": IDS,
    }


@pytest.fixture(scope="module")
def bootstrapped() -> Iterator[Path]:
    """A data folder in use (profiles, a model, 300 decisions) the user nobody can reach."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run a command as an unprivileged user")
    with tempfile.TemporaryDirectory(prefix="makegood-ro-") as base:
        os.chmod(base, 0o755)
        data = Path(base) / "data"
        path = Path(base) / "incident.json"
        path.write_text(json.dumps(incident("RO-1")))
        args = ["--data", str(data), "incidents", "apply", str(path), "-o", f"{base}/out.json"]
        done = subprocess.run(
            [sys.executable, "-m", "api.cli", *args],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        yield data


@pytest.fixture(params=["not-owner", "read-only-mount"])
def read_only(
    request: pytest.FixtureRequest, bootstrapped: Path
) -> Iterator[tuple[Path, list[str]]]:
    """A copy of the folder and the command prefix under which it cannot be written."""
    data = bootstrapped.with_name(f"data-{request.param}")
    shutil.copytree(bootstrapped, data)
    prefix = NOBODY if request.param == "not-owner" else _mounted_read_only(data)
    try:
        if not _works(prefix):
            pytest.skip(f"cannot run {prefix[0]} here (needs root; the venv readable by nobody)")
        yield data, prefix
    finally:
        shutil.rmtree(data)


def run(prefix: list[str], data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*prefix, sys.executable, "-m", "api.cli", "--data", str(data), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip().startswith("Error:")]
    assert len(lines) == 1, output
    return lines[0]


def assert_ledger_whole(data: Path, recorded: dict[str, int]) -> None:
    engine = create_engine(f"sqlite:///{data / 'makegood.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        ledger = Ledger(engine)
        assert {i: ledger.count(i) for i in recorded} == recorded
    finally:
        engine.dispose()


def test_serve_refuses_a_read_only_folder_at_start_naming_it(
    read_only: tuple[Path, list[str]],
) -> None:
    data, prefix = read_only
    line = one_error_line(run(prefix, data, "serve", "--port", str(free_port())))
    assert str(data) in line and "not writable" in line, line
    assert_ledger_whole(data, {"RO-1": 300})


def test_a_write_to_a_read_only_folder_is_one_error_and_the_ledger_stays_whole(
    read_only: tuple[Path, list[str]],
) -> None:
    data, prefix = read_only
    path = data.parent / "incident-2.json"
    path.write_text(json.dumps(incident("RO-2")))
    line = one_error_line(run(prefix, data, "incidents", "apply", str(path)))
    assert line.startswith("Error: database:") and str(data) in line, line
    assert "read-only" in line
    assert_ledger_whole(data, {"RO-1": 300, "RO-2": 0})


def test_a_folder_made_read_only_while_serving_is_a_503_never_a_500(
    bootstrapped: Path, tmp_path: Path
) -> None:
    if not _works(NOBODY):
        pytest.skip("cannot run setpriv here (needs root; the venv readable by nobody)")
    data = bootstrapped.with_name("data-serving")
    shutil.copytree(bootstrapped, data)
    shutil.chown(data, "nobody", "nogroup")
    for path in data.rglob("*"):
        shutil.chown(path, "nobody", "nogroup")
    env = {**os.environ, "MAKEGOOD_DATA": str(data), "HOME": str(data.parent)}
    env.pop("MAKEGOOD_DATABASE_URL", None)
    server, base = start(env, tmp_path / "server.log", prefix=NOBODY)
    try:
        key = (data / "local-admin.key").read_text().strip()
        assert call("POST", f"{base}/v1/incidents", key, incident("RO-2"))[0] == 201
        subprocess.run(["chmod", "-R", "a-w", str(data)], check=True)
        snapshots = sorted((data / "profiles").glob("snapshot-*.parquet"))
        upload = tmp_path / "profiles.parquet"
        pl.read_parquet(snapshots[-1]).head(50).write_parquet(upload)
        status, body = upload_profiles(base, key, upload)
        assert status == 503 and "read-only or full" in body["detail"], body
        assert "Permission denied" in body["detail"]
        assert sorted((data / "profiles").glob("*.parquet")) == snapshots  # nothing half-written
        # SQLite keeps writing through the files it holds open, or refuses the call whole
        status, body = call("POST", f"{base}/v1/incidents", key, incident("RO-3"))
        assert status in (201, 503), body
        written = 300 if status == 201 else 0
        assert call("GET", f"{base}/readyz")[0] == 200  # the server stays up
    finally:
        server.terminate()
        server.wait(timeout=30)
        subprocess.run(["chmod", "-R", "u+w", str(data)], check=False)
    assert f"data folder {data} cannot be written" in (tmp_path / "server.log").read_text()
    assert_ledger_whole(data, {"RO-1": 300, "RO-2": 300, "RO-3": written})
    shutil.rmtree(data)


def upload_profiles(base: str, key: str, path: Path) -> tuple[int, dict[str, object]]:
    """`POST /v1/profiles/import` of one file, as multipart form data."""
    import urllib.error
    import urllib.request

    boundary = "makegood-test-boundary"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    body = head.encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{base}/v1/profiles/import",
        body,
        {
            "authorization": f"Bearer {key}",
            "content-type": f"multipart/form-data; boundary={boundary}",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_refused_sqlite_write_is_a_503_naming_why(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    """The ledger opened read-only, as SQLite does when the file turned unwritable."""
    path = make_url(runtime.engine.url).database
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    runtime.engine, runtime.ledger = engine, Ledger(engine)
    ids = runtime.book.frame["customer_id"].to_list()[:5]
    try:
        with TestClient(app=create_app(runtime)) as client:
            client.headers.update(admin_headers)
            refused = client.post("/v1/incidents", json=incident("RO-4") | {"customers": ids})
            assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
            detail = refused.json()["detail"]
            assert "readonly database" in detail and "nothing was recorded" in detail, detail
            assert client.get("/v1/incidents/RO-4").status_code == 404
    finally:
        engine.dispose()
