"""Promote and rollback prove a version loads before ACTIVE moves: a tampered version is
refused by the CLI (one line) and by a real server (422 naming why), ACTIVE stays, and the
server still starts on the folder afterwards."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from api.cli import cli
from segmentation.model import Segmentation
from segmentation.registry import Registry
from tests.servers import call, start

BOMB_BYTES = 80 << 20  # a model part may inflate to 64 MiB (segmentation.registry)


def _rewrite(path: Path, replace: Callable[[zipfile.ZipFile, zipfile.ZipFile, str], bool]) -> None:
    """Copy a model file part by part; `replace` writes the parts it takes over itself."""
    source = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    with zipfile.ZipFile(path, "w") as target:
        for name in source.namelist():
            if not replace(source, target, name):
                target.writestr(name, source.read(name))


def _redigest(folder: Path) -> None:
    """What an attacker with write access does: record the new file's digest."""
    digest = hashlib.sha256((folder / "model.skops").read_bytes()).hexdigest()
    (folder / "model.sha256").write_text(digest + "\n")


class _Runs:
    """Unpickling this makes a folder: proof that code from a model file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def _pickled_npy(folder: Path) -> None:
    """One array of the model replaced by a pickle that would run code when loaded (it
    would make `code-ran` beside the data folder)."""
    marker = folder.parents[2] / "code-ran"
    with zipfile.ZipFile(folder / "model.skops") as archive:
        first = next(n for n in archive.namelist() if n.endswith(".npy"))

    def swap(source: zipfile.ZipFile, target: zipfile.ZipFile, name: str) -> bool:
        if name != first:
            return False
        buffer = io.BytesIO()
        np.save(buffer, np.array([_Runs(marker)], dtype=object), allow_pickle=True)
        target.writestr(name, buffer.getvalue())
        return True

    _rewrite(folder / "model.skops", swap)
    _redigest(folder)


def _bombed_schema(folder: Path) -> None:
    """schema.json padded with whitespace (still valid JSON) to inflate past the bound."""

    def swap(source: zipfile.ZipFile, target: zipfile.ZipFile, name: str) -> bool:
        if name != "schema.json":
            return False
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with target.open(info, "w", force_zip64=True) as out:
            out.write(source.read(name))
            block = b" " * (1 << 20)
            for _ in range(BOMB_BYTES // len(block)):
                out.write(block)
        return True

    _rewrite(folder / "model.skops", swap)
    _redigest(folder)


def _short_card(folder: Path) -> None:
    """A card that no longer names every cluster of its model."""
    card = json.loads((folder / "card.json").read_text())
    card["segments"] = card["segments"][:-1]
    (folder / "card.json").write_text(json.dumps(card))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "pickle": _pickled_npy,
    "bomb": _bombed_schema,
    "card": _short_card,
}
WHY = {
    "pickle": "Object arrays cannot be loaded when allow_pickle=False",
    "bomb": "schema.json would inflate to",
    "card": "its card names 4 segments of k=5",
}


@pytest.fixture
def data(tmp_path: Path, model: Segmentation, population: pl.DataFrame) -> Iterator[Path]:
    """A data folder with seg-0001 active and seg-0002 (the same model) saved."""
    folder = tmp_path / "data"
    (folder / "profiles").mkdir(parents=True)
    population.drop("latent_kind").write_parquet(folder / "profiles" / "snapshot-0001.parquet")
    registry = Registry(folder / "models")
    registry.save(model)
    registry.promote("seg-0001")
    registry.save(model.with_card(msgspec.structs.replace(model.card, version="seg-0002")))
    yield folder


def _cli(data: Path, *args: str) -> str:
    """Run a failing `makegood segments …`; its single output line."""
    result = CliRunner().invoke(cli, ["--data", str(data), "segments", *args], terminal_width=200)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def _server(data: Path, log: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    env = {**os.environ, "MAKEGOOD_DATA": str(data)}
    env.pop("MAKEGOOD_DATABASE_URL", None)
    server, base = start(env, log)
    return server, base, (data / "local-admin.key").read_text().strip()


def _state(data: Path) -> tuple[str, bytes]:
    return (data / "models" / "ACTIVE").read_text(), (data / "models" / "HISTORY").read_bytes()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_promoting_a_tampered_version_is_refused_and_active_stays(
    data: Path, tmp_path: Path, damage: str
) -> None:
    DAMAGE[damage](data / "models" / "seg-0002")
    before = _state(data)

    line = _cli(data, "promote", "seg-0002")
    assert "cannot promote seg-0002" in line and WHY[damage] in line
    assert _state(data) == before

    server, base, key = _server(data, tmp_path / "server.log")  # the folder still serves
    try:
        status, body = call("POST", f"{base}/v1/segmentations/seg-0002/promote", key)
        assert status == 422 and WHY[damage] in body["detail"], body
        assert _state(data) == before
        status, versions = call("GET", f"{base}/v1/segmentations", key)
        assert status == 200 and [v["version"] for v in versions if v["active"]] == ["seg-0001"]
        assert call("GET", f"{base}/readyz")[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not (tmp_path / "code-ran").exists()


def test_rolling_back_to_a_tampered_version_is_refused_and_active_stays(
    data: Path, tmp_path: Path
) -> None:
    Registry(data / "models").promote("seg-0002")
    _pickled_npy(data / "models" / "seg-0001")
    before = _state(data)

    line = _cli(data, "rollback")
    assert "cannot roll back to seg-0001" in line and WHY["pickle"] in line
    assert _state(data) == before

    server, base, key = _server(data, tmp_path / "server.log")
    try:
        status, body = call("POST", f"{base}/v1/segmentations/rollback", key)
        assert status == 422 and "cannot roll back to seg-0001" in body["detail"], body
        assert _state(data) == before
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not (tmp_path / "code-ran").exists()


def test_a_zip_bomb_is_refused_without_inflating_it(data: Path) -> None:
    _bombed_schema(data / "models" / "seg-0002")
    tracemalloc.start()
    try:
        line = _cli(data, "promote", "seg-0002")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert WHY["bomb"] in line
    assert peak < BOMB_BYTES // 8  # the part itself is never read
