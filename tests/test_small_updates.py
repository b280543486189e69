"""A flight's few hundred passengers take the small-update path: the same decisions as the
vectorized path that a million-customer incident takes, field by field.

The small path names the update's customers in its queries and writes a few hundred rows
as one statement (one JSON parameter on PostgreSQL); the vectorized path stages them in a
temporary table and copies rows in bulk. Both are run on randomized incidents where
budget, stock, contact caps, holdout, learning and escalations all bite, each on its own
ledger, and every answer and every stored decision is compared.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest

import offers.ledger.bulk as bulk
import offers.ledger.reads as reads
from api.http.wire import decisions_json, decisions_out
from api.runtime import Runtime
from offers.decide.policy import ContactPolicy
from offers.flow import Outcome, Parts, apply_update
from offers.ledger.db import create_engine, upgrade
from offers.ledger.store import Ledger
from tests.conftest import postgres_schema
from tests.test_preview import NOW, incident, learned, lounges_per_day, with_alternative


@contextmanager
def twin_ledger(runtime: Runtime, tmp_path: Path) -> Iterator[Ledger]:
    """A second, empty ledger of the runtime's kind (an SQLite file, a PostgreSQL schema)."""
    if runtime.engine.dialect.name == "postgresql":
        with postgres_schema() as url:
            engine = create_engine(url)
            upgrade(engine)
            yield Ledger(engine)
            engine.dispose()
        return
    engine = create_engine(f"sqlite:///{tmp_path / 'vectorized.db'}")
    upgrade(engine)
    yield Ledger(engine)
    engine.dispose()


def scenario(rng: random.Random, ids: list[str]) -> list[tuple[Any, ...]]:
    """(incident, delay, customers, budget, minutes after NOW) of each update, in order:
    three earlier incidents of some customers (the cap: perks in 3), then a flight created,
    given more passengers, escalated and replayed, under a budget that runs out."""
    rng.shuffle(ids)
    flight = ids[: rng.randint(120, 300)]
    updates: list[tuple[Any, ...]] = [
        (f"EARLIER-{days}", 100, rng.sample(ids[:150], 130), None, -days * 24 * 60)
        for days in (3, 2, 1)
    ]
    budget = float(rng.randint(40, 400))
    updates.append(("MG1", 50, flight[:100], budget, 0))
    updates.append(("MG1", 50, flight[100:], None, 5))  # more passengers, same step
    for minutes, delay in ((45, 100), (90, 150), (135, 200)):
        more = rng.sample(ids[300:], rng.randint(0, 20))
        updates.append(("MG1", delay, more, budget + rng.randint(0, 200), minutes))
    updates.append(("MG1", 200, [], None, 140))  # the same step again: nothing new
    return updates


def run(parts: Parts, updates: list[tuple[Any, ...]]) -> list[Outcome]:
    outcomes = []
    for incident_id, delay, customers, budget, minutes in updates:
        at = NOW + timedelta(minutes=minutes)
        outcomes.append(
            apply_update(parts, incident(delay, incident_id), customers, at, budget=budget)
        )
    return outcomes


def comparable(frame: pl.DataFrame) -> pl.DataFrame:
    """Decisions without what is drawn fresh for each (the redemption code, also spliced
    into the text)."""
    texts = [
        None if text is None else text.replace(code, "CODE") if code else text
        for text, code in zip(frame["text"], frame["perk_code"], strict=True)
    ]
    return (
        frame.with_columns(pl.Series("text", texts, pl.String))
        .drop("perk_code")
        .sort("step", "customer_id")
    )


#: What the randomized incidents must run into (words of the decisions' reasons).
BITES = ("budget:", "stock:", "contact cap", "holdout", "learning")


@contextmanager
def vectorized(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every update takes the path of a large one: staged customers, bulk copies."""
    with monkeypatch.context() as patched:
        patched.setattr(reads, "SMALL", 0)
        patched.setattr(bulk, "SMALL", 0)
        yield


@pytest.mark.parametrize("seed", [1, 2])
def test_small_and_vectorized_updates_decide_and_record_alike(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    table = with_alternative(lounges_per_day(runtime, rng.randint(1, 4)))
    learning = learned(runtime)
    small = replace(
        runtime.parts(),
        contact=ContactPolicy(holdout_share=0.25),
        learning=lambda _now: learning,
        table=lambda _kind: table,
    )
    updates = scenario(rng, runtime.book.frame["customer_id"].sort().to_list())
    answers = run(small, updates)
    with twin_ledger(runtime, tmp_path) as other, vectorized(monkeypatch):
        expected = run(replace(small, ledger=other), updates)
        wanted = [comparable(o.decisions) for o in expected]  # read before the ledger goes
        stored = other.decisions("MG1")

    seen: set[str] = set()
    for got, want, decided in zip(answers, expected, wanted, strict=True):
        assert (got.step, got.issued, got.created) == (want.step, want.issued, want.created)
        assert got.spent == pytest.approx(want.spent)
        assert got.budget == want.budget
        assert comparable(got.decisions).equals(decided)
        for reasons in got.decisions["reasons"]:
            seen |= {k for k in BITES if k in reasons}
    assert comparable(runtime.ledger.decisions("MG1")).equals(comparable(stored))
    assert [o.issued for o in answers][-1] == 0  # the replayed step recorded nothing
    assert set(BITES) <= seen


def test_an_answer_written_by_polars_is_the_document_msgspec_writes(runtime: Runtime) -> None:
    """The incident answer's decisions (follow-up times, perks, entitlements, reasons) as
    polars writes them equal what msgspec writes from the typed decisions."""
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0.25))
    ids = runtime.book.frame["customer_id"].sample(200, seed=3).to_list()
    created = apply_update(parts, incident(200, "MG7"), ids, NOW + timedelta(microseconds=1))
    frame = created.decisions
    assert frame["followups"].list.len().sum() > 0 and frame["perk_id"].drop_nulls().len() > 0
    ours = msgspec.json.decode(msgspec.json.encode(decisions_json(frame)))
    typed = msgspec.json.decode(msgspec.json.encode(decisions_out(frame)))
    assert ours == typed
