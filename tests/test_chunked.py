"""A huge step decided a chunk at a time decides exactly as one pass does.

Stock per airport and day, the budget and caps from another incident all bite; the chunked
update (chunks of 97 customers) must equal the one-shot update on a second ledger, perk
codes aside (drawn at record time), follow-ups included, and a replay of it records
nothing. The chunks' candidates wait in temporary files between the passes: none is left
behind, and an update that fails after recording some chunks leaves nothing recorded.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from api.runtime import Runtime
from api.settings import Settings
from offers.catalog.tables import DEFAULTS
from offers.decide import ContactPolicy
from offers.flow import Parts, apply_update
from offers.incidents.kinds import FlightFacts, Incident
from offers.ledger import Ledger, create_engine, upgrade
from offers.ledger.versions import publish_table
from offers.messages.book import load_default_book
from segmentation.book import ProfileBook
from segmentation.model import Segmentation

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
CODES = ["perk_code", "text"]  # the text carries the code


def _incident(incident_id: str) -> Incident:
    return Incident(
        incident_id=incident_id,
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 23, 5, 0, tzinfo=UTC),
        facts=FlightFacts(delay_minutes=60, flight="MG123", origin="TPE"),
    )


def _parts(ledger: Ledger, population: pl.DataFrame, model: Segmentation, tmp: Path) -> Parts:
    """The default table with seat upgrades and lounge passes stocked at TPE, one perk per
    customer in the window, a 10% holdout."""
    body = (
        (DEFAULTS / "offers.toml")
        .read_text(encoding="utf-8")
        .replace(
            'id = "upgrade-seat"\n',
            'id = "upgrade-seat"\nstock = [{ airport = "TPE", per_day = 40 }]\n',
        )
        .replace(
            'id = "lounge-1h"\n', 'id = "lounge-1h"\nstock = [{ airport = "TPE", per_day = 30 }]\n'
        )
    )
    publish_table(ledger, "flight-delay", body, "tests", "stock", NOW)
    rt = Runtime(
        settings=Settings(data_dir=tmp),
        engine=ledger.engine,
        ledger=ledger,
        model=model,
        book=ProfileBook(population.drop("latent_kind"), model),
        messages=load_default_book(),
    )
    rt.reload_table()
    return replace(rt.parts(), contact=ContactPolicy(holdout_share=0.1, max_perks=1))


def _comparable(frame: pl.DataFrame) -> pl.DataFrame:
    enums = [n for n, t in frame.schema.items() if isinstance(t, pl.Enum)]
    return frame.drop(CODES).with_columns(pl.col(enums).cast(pl.String)).sort("customer_id")


@pytest.fixture
def spill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory the chunks' files go under, for this test alone."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def _files(where: Path) -> list[Path]:
    return [p for p in where.rglob("*") if p.is_file()]


def test_a_chunked_update_equals_the_one_shot_update(
    ledger: Ledger, population: pl.DataFrame, model: Segmentation, tmp_path: Path, spill: Path
) -> None:
    ids = population["customer_id"].to_list()
    chunked = _parts(ledger, population, model, tmp_path)
    engine = create_engine(f"sqlite:///{tmp_path / 'one-shot.db'}")
    upgrade(engine)
    one_shot = _parts(Ledger(engine), population, model, tmp_path)
    earlier = ids[::7]  # got a perk in another incident: capped now (staged and read)
    for parts in (chunked, one_shot):
        apply_update(parts, _incident("TPE-0"), earlier, NOW)
    budget = 2_500.0
    want = apply_update(one_shot, _incident("TPE-1"), ids, NOW, budget=budget)
    waiting: list[int] = []

    def progress(message: str, _done: float) -> None:
        if message.startswith("deciding and recording part"):
            waiting.append(len(_files(spill)))

    got = apply_update(
        chunked, _incident("TPE-1"), ids, NOW, budget=budget, chunk_size=97, progress=progress
    )
    assert waiting[0] > 0 and waiting[-1] < waiting[0]  # spilled, and read back one by one
    assert _files(spill) == [] and list(spill.iterdir()) == []
    assert got.issued == want.issued == len(ids)
    assert got.count == len(ids)
    assert got.cost == want.cost <= budget
    reasons = " ".join(want.decisions["reasons"].to_list())
    assert "stock: no upgrade-seat left at TPE" in reasons and '"budget: ' in reasons  # both bite
    assert _comparable(got.decisions).equals(_comparable(want.decisions))
    assert want.decisions["followups"].list.len().sum() > 0  # the plan is compared too
    pages = pl.concat(list(got.pages(250)))
    assert _comparable(pages).equals(_comparable(got.decisions))
    again = apply_update(chunked, _incident("TPE-1"), ids, NOW, budget=budget, chunk_size=97)
    assert again.issued == 0 and ledger.count("TPE-1") == len(ids)
    engine.dispose()


def test_a_chunked_update_failing_midway_records_nothing_and_leaves_no_files(
    ledger: Ledger, population: pl.DataFrame, model: Segmentation, tmp_path: Path, spill: Path
) -> None:
    parts = _parts(ledger, population, model, tmp_path)
    ids = population["customer_id"].to_list()

    class Stopped(Exception):
        pass

    def stop_at_the_fifth_part(message: str, _done: float) -> None:
        if message.startswith("deciding and recording part 5 "):
            raise Stopped  # four parts are recorded by now, in the update's transaction

    with pytest.raises(Stopped):
        apply_update(
            parts, _incident("TPE-2"), ids, NOW, chunk_size=97, progress=stop_at_the_fifth_part
        )
    assert ledger.count("TPE-2") == 0 and ledger.incident("TPE-2") is None
    assert list(spill.iterdir()) == []
    done = apply_update(parts, _incident("TPE-2"), ids, NOW, chunk_size=97)
    assert done.issued == len(ids) == ledger.count("TPE-2")
