"""A huge step decided a chunk at a time decides exactly as one pass does.

Stock per airport and day, the budget and caps from another incident all bite; the chunked
update (chunks of 97 customers) must equal the one-shot update on a second ledger, perk
codes aside (drawn at record time), and a replay of it records nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

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


def test_a_chunked_update_equals_the_one_shot_update(
    ledger: Ledger, population: pl.DataFrame, model: Segmentation, tmp_path: Path
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
    got = apply_update(chunked, _incident("TPE-1"), ids, NOW, budget=budget, chunk_size=97)
    assert got.issued == want.issued == len(ids)
    assert got.count == len(ids)
    assert got.cost == want.cost <= budget
    reasons = " ".join(want.decisions["reasons"].to_list())
    assert "stock: no upgrade-seat left at TPE" in reasons and '"budget: ' in reasons  # both bite
    assert _comparable(got.decisions).equals(_comparable(want.decisions))
    pages = pl.concat(list(got.pages(250)))
    assert _comparable(pages).equals(_comparable(got.decisions))
    again = apply_update(chunked, _incident("TPE-1"), ids, NOW, budget=budget, chunk_size=97)
    assert again.issued == 0 and ledger.count("TPE-1") == len(ids)
    engine.dispose()
