"""The shipped default table is personal at every step: each segment gets a perk of its own
type inside the step's value band, also when the first call arrives at a late step, and
the demo says why wherever a step gives no perk (issue 16, item 2)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from rich.console import Console

from api.cli.demo import _segment_table
from api.runtime import Runtime
from offers.decide.policy import ValuePolicy
from offers.flow import Outcome, apply_update
from offers.incidents import FlightFacts, Incident

BUSINESS = ("road-warrior", "premium-business")
LEISURE = ("leisure-family", "duty-free-shopper", "occasional-flyer")
#: the perk kinds that fit a segment; occasional flyers take whatever the catch-all offers
FITS = {
    "road-warrior": {"lounge_pass", "upgrade"},
    "premium-business": {"lounge_pass", "upgrade"},
    "duty-free-shopper": {"discount_percent"},
    "leisure-family": {"meal"},
}
DELAYS = (30, 60, 100, 140, 190)


def _update(runtime: Runtime, incident_id: str, delay: int, ids: list[str]) -> Outcome:
    incident = Incident(
        incident_id=incident_id,
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 23, 7, tzinfo=UTC),
        facts=FlightFacts(delay_minutes=delay, flight="MG123"),
    )
    return apply_update(runtime.parts(), incident, ids, datetime.now(UTC))


def _passengers(runtime: Runtime) -> pl.DataFrame:
    return runtime.book.frame.sample(600, seed=16, shuffle=True)


def _with_kinds(runtime: Runtime, outcome: Outcome) -> pl.DataFrame:
    kinds = pl.DataFrame(
        {
            "perk_id": [p.id for p in runtime.table().perks],
            "kind": [p.kind for p in runtime.table().perks],
        }
    )
    return outcome.decisions.join(kinds, on="perk_id", how="left")


def _tvd(decisions: pl.DataFrame) -> float:
    """Total variation distance between business and leisure segments' mixes of perk kinds."""
    given = decisions.filter(pl.col("perk_id").is_not_null())

    def mix(segments: tuple[str, ...]) -> dict[str, float]:
        kinds = given.filter(pl.col("segment").is_in(segments))["kind"]
        return {k: c / len(kinds) for k, c in kinds.value_counts().iter_rows()}

    business, leisure = mix(BUSINESS), mix(LEISURE)
    return 0.5 * sum(abs(business.get(k, 0) - leisure.get(k, 0)) for k in business | leisure)


def _assert_personal(runtime: Runtime, outcome: Outcome) -> None:
    decisions = _with_kinds(runtime, outcome)
    assert set(decisions["segment"]) == set(BUSINESS + LEISURE)
    # nobody goes without a perk except the holdout (a fresh ledger has no caps reached)
    assert decisions.filter(pl.col("perk_id").is_null() & ~pl.col("holdout")).is_empty(), (
        decisions.filter(pl.col("perk_id").is_null() & ~pl.col("holdout"))["reasons"][0]
    )
    for segment, kinds in FITS.items():
        got = set(decisions.filter(pl.col("segment") == segment)["kind"].drop_nulls())
        assert got and got <= kinds, (outcome.step, segment, got)
    band = ValuePolicy().band(outcome.step)
    assert band is not None
    values = decisions["perk_value"].drop_nulls()
    assert values.min() >= band.min_value and values.max() <= band.max_value  # type: ignore[operator]
    assert _tvd(decisions) >= 0.2, outcome.step


def test_every_segment_gets_its_own_type_of_perk_at_every_step(runtime: Runtime) -> None:
    ids = _passengers(runtime)["customer_id"].to_list()
    for step, delay in enumerate(DELAYS, start=1):
        outcome = _update(runtime, "MG123-steps", delay, ids)
        assert outcome.step == step
        _assert_personal(runtime, outcome)


def test_a_first_call_at_190_minutes_is_still_personal(runtime: Runtime) -> None:
    """A desk that learns of the delay late: no credit for everyone from a catch-all rule."""
    outcome = _update(runtime, "MG123-late", 190, _passengers(runtime)["customer_id"].to_list())
    assert outcome.step == 5
    _assert_personal(runtime, outcome)


def _cells(outcome: Outcome, passengers: pl.DataFrame) -> dict[str, str]:
    """The demo's 'perks issued / why none' cell per segment, as printed."""
    console = Console(record=True, width=400)
    console.print(_segment_table(outcome, passengers))
    rows = [line.split("│") for line in console.export_text().splitlines() if "│" in line]
    return {cols[1].strip(): cols[5].strip() for cols in rows if cols[1].strip() != "segment"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_demo_counts_why_a_segment_got_no_perk(runtime: Runtime) -> None:
    """Past the last step's perks everyone already holds them: each cell counts why."""
    passengers = _passengers(runtime)
    ids = passengers["customer_id"].to_list()
    _update(runtime, "MG123-why", 190, ids)
    later = _update(runtime, "MG123-why", 240, ids)  # step 6: the same perks as step 5
    assert later.step == 6 and later.decisions["perk_id"].null_count() == len(ids)
    cells = _cells(later, passengers)
    sizes = dict(passengers.group_by("segment").len().iter_rows())
    assert set(cells) == set(sizes)
    for segment, cell in cells.items():
        assert cell.startswith("no perk: "), cell
        counts = [
            int(part.rsplit(" x", 1)[1]) for part in cell.removeprefix("no perk: ").split(", ")
        ]
        assert sum(counts) == sizes[segment], (segment, cell)
        assert "already holds it x" in cell
