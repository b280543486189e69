"""Faults: a damaged model file, an unreachable database, an unwritable data folder."""

from __future__ import annotations

import contextlib
import json
import resource
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from sqlalchemy.engine import make_url

from api.app import create_app
from api.cli import cli
from api.runtime import Runtime
from offers.ledger.db import create_engine
from offers.ledger.store import Ledger
from segmentation.model import Segmentation
from segmentation.registry import Registry, RegistryError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("damage", ["tampered", "truncated"])
def test_a_damaged_model_is_refused_and_the_previous_one_keeps_serving(
    runtime: Runtime, model: Segmentation, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry(runtime.settings.data_dir / "models")
    registry.save(model)
    registry.promote(model.card.version)
    second = model.with_card(msgspec.structs.replace(model.card, version="seg-0002"))
    registry.save(second)
    registry.promote("seg-0002")
    path = runtime.settings.data_dir / "models" / "seg-0002" / "model.skops"
    data = path.read_bytes()
    if damage == "tampered":  # same size, a few bytes changed in the middle
        middle = len(data) // 2
        path.write_bytes(
            data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 8]) + data[middle + 8 :]
        )
    else:
        path.write_bytes(data[: len(data) // 3])
    with pytest.raises(RegistryError, match="corrupted or tampered"):
        registry.load("seg-0002")
    assert runtime.refresh_model() is False
    assert runtime.model.card.version == "seg-0001" and len(runtime.book) > 0
    assert "refused, still serving seg-0001" in caplog.text
    registry.rollback()
    with pytest.raises(RegistryError, match="corrupted or tampered"):
        registry.promote("seg-0002")  # never made active again
    assert registry.active() == "seg-0001"


class Proxy:
    """A TCP relay to the database that a test can cut and restore, like an outage."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._live: list[socket.socket] = []
        self._server: socket.socket | None = None

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self.port, self._server = server.getsockname()[1], server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        for sock in [self._server, *self._live]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._live, self._server = [], None

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._live += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_database_outage_is_503_with_retry_after_and_recovers_without_restart(
    db_url: str, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    url = make_url(db_url)
    proxy = Proxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    engine = create_engine(url.set(port=proxy.port).render_as_string(hide_password=False))
    runtime.engine, runtime.ledger = engine, Ledger(engine)
    try:
        with TestClient(app=create_app(runtime)) as client:
            client.headers.update(admin_headers)
            assert client.get("/v1/incidents/nope").status_code == 404
            proxy.stop()
            down = client.get("/v1/incidents/nope")
            assert down.status_code == 503 and down.headers["retry-after"] == "5"
            assert "database unavailable" in down.json()["detail"]
            assert client.get("/readyz").status_code == 503
            proxy.start()  # same port: the database is back
            assert client.get("/readyz").status_code == 200
            assert client.get("/v1/incidents/nope").status_code == 404
    finally:
        proxy.stop()
        engine.dispose()


def test_a_full_disk_is_one_clear_error_and_leaves_the_ledger_intact(tmp_path: Path) -> None:
    """The file-size limit stands in for a full disk (it also binds root, unlike chmod)."""
    data = tmp_path / "data"
    ids = [f"c{i:06d}" for i in range(1, 3001)]
    incident = {
        "incident_id": "FULL-1",
        "kind": "flight_delay",
        "occurred_at": "2026-11-25T07:05:00Z",
        "facts": {"delay_minutes": 95, "flight": "MG1"},
        "customers": ids,
    }
    path = tmp_path / "incident.json"
    path.write_text(json.dumps(incident))
    ok = CliRunner().invoke(cli, ["--data", str(data), "db", "upgrade"])
    assert ok.exit_code == 0, ok.output
    first = CliRunner().invoke(
        cli, ["--data", str(data), "incidents", "apply", str(path), "-o", str(tmp_path / "o.json")]
    )  # bootstraps profiles and a model, decides once: the folder is in use
    assert first.exit_code == 0, first.output
    path.write_text(json.dumps(incident | {"incident_id": "FULL-2"}))
    db = data / "makegood.db"
    limit = 64 * 1024  # no file may grow past this, nor be written beyond it

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "api.cli",
            "--data",
            str(data),
            "incidents",
            "apply",
            str(path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        preexec_fn=full_disk,
        check=False,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip().startswith("Error:")]
    assert len(lines) == 1 and ("full" in lines[0] or "disk" in lines[0]), result.stderr
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        ledger = Ledger(engine)
        assert ledger.count("FULL-1") == 3000 and ledger.count("FULL-2") == 0
    finally:
        engine.dispose()
