"""`makegood segments …` through click's runner, on temporary data folders."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

from api.cli import cli
from offers.ledger.db import create_engine, upgrade
from offers.ledger.store import Ledger
from offers.ledger.versions import publish_table
from tests.tables import named_body


@pytest.fixture
def data(population: pl.DataFrame, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / "profiles").mkdir(parents=True)
    population.drop("latent_kind").write_parquet(folder / "profiles" / "snapshot-0001.parquet")
    return folder


def _run(data: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data", str(data), "segments", *args], terminal_width=200)


def _publish_default_table(data: Path) -> None:
    engine = create_engine(f"sqlite:///{data / 'makegood.db'}")
    upgrade(engine)
    body = named_body()  # rules that name segments: what promotion must keep
    publish_table(Ledger(engine), "flight-delay", body, "tests", "default", datetime.now(UTC))
    engine.dispose()


def _ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def _error(result: Result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_an_analyst_session(data: Path, population: pl.DataFrame) -> None:
    assert "no segmentation versions yet" in _ok(_run(data, "list"))
    out = _ok(_run(data, "train", "--k", "5", "--seed", "7", "--promote"))
    assert "saved segmentation seg-0001" in out and "seg-0001 is now active" in out
    assert "road-warrior" in out and "new" in out

    out = _ok(_run(data, "train", "--k", "4", "--seed", "7"))
    assert "saved segmentation seg-0002" in out and "carried over" in out
    assert "names that vanished since seg-0001" in out
    card = json.loads(_ok(_run(data, "show", "seg-0002", "--json")))
    assert card["parent"] == "seg-0001" and card["k"] == 4 and card["vanished"]

    listing = _ok(_run(data, "list"))
    assert "seg-0001 *" in listing and "seg-0002" in listing

    _publish_default_table(data)
    vanished = card["vanished"][0]
    refused = _error(_run(data, "promote", "seg-0002"))
    assert "cannot promote seg-0002" in refused
    if vanished in ("road-warrior", "premium-business", "duty-free-shopper"):
        assert f"{vanished!r} used by rule" in refused
    refused = _error(_run(data, "rename", "seg-0001", "road-warrior", "globetrotter"))
    assert "used by biz-lounge" in refused or "used by" in refused

    _ok(_run(data, "rename", "seg-0001", "occasional-flyer", "rare-flyer", "--description", "x"))
    out = _ok(_run(data, "train", "--k", "5", "--seed", "3"))
    assert "rare-flyer" in out and "saved segmentation seg-0003" in out
    assert "seg-0003 is now active" in _ok(_run(data, "promote", "seg-0003"))
    assert "seg-0001 is active again" in _ok(_run(data, "rollback"))

    shifted = data / "shifted.parquet"
    population.drop("latent_kind").with_columns(pl.col("spend_12m") * 3).write_parquet(shifted)
    out = _ok(_run(data, "drift", "--against", str(shifted)))
    assert "log1p_spend_12m" in out and "drift flagged" in out
    assert "stable" in _ok(_run(data, "drift"))

    report = data / "report.html"
    out = _ok(_run(data, "report", "seg-0003", "-o", str(report)))
    html = report.read_text(encoding="utf-8")
    assert "<svg" in html and "rare-flyer" in html and "http" not in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "seg-0099"], "no segmentation version 'seg-0099'"),
        (["promote", "seg-0099"], "no segmentation version 'seg-0099'"),
        (["rollback"], "nothing to roll back"),
        (["drift"], "no active segmentation"),
    ],
)
def test_errors_are_one_line(data: Path, args: list[str], message: str) -> None:
    assert message in _error(_run(data, *args))


def test_train_needs_profiles_and_refuses_protected_features(tmp_path: Path, data: Path) -> None:
    assert "no profile snapshot" in _error(_run(tmp_path / "empty", "train"))
    spec = tmp_path / "spec.toml"
    spec.write_text('[[features]]\ncolumn = "gender"\ntransform = "onehot"\n')
    assert "feature gender: protected attribute" in _error(_run(data, "train", "--spec", str(spec)))
