"""One real day of New York departures replayed through the engine (8 March 2013, snow).

Each late flight is an incident whose delay grows, update by update, to its real arrival
delay; passengers are drawn from synthetic profiles, from a pool small enough that some
are hit twice. Per-step counts, caps, human flags, costs and entitlements are checked.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from api.runtime import Runtime
from offers.flow import apply_update
from offers.incidents.kinds import EscalationPolicy, FlightFacts, Incident

DAY = Path(__file__).parent / "data" / "nyc_flights_2013_03_08.parquet"
PER_FLIGHT = 20
POOL = 500


def _flights() -> pl.DataFrame:
    late = pl.read_parquet(DAY).filter(pl.col("arr_delay") >= 30).sort("time_hour", "flight")
    earliest = late.head(30)
    worst = late.sort("arr_delay", descending=True).head(10)
    return pl.concat([earliest, worst]).unique(["carrier", "flight", "origin"], keep="first")


def _updates(arrival_delay: int, policy: EscalationPolicy) -> list[int]:
    """Delays as the desk reports them: one update per newly crossed step, then the last."""
    marks = [policy.notice_minutes, *range(policy.step_minutes, 24 * 60, policy.step_minutes)]
    return [m for m in marks if m < arrival_delay] + [arrival_delay]


def replay(runtime: Runtime) -> tuple[pl.DataFrame, pl.DataFrame]:
    flights = _flights()
    pool = runtime.book.frame["customer_id"].head(POOL).to_numpy()
    policy = runtime.policy
    plan = []
    for i, f in enumerate(flights.iter_rows(named=True)):  # one incident per flight
        rng = np.random.default_rng(i)
        passengers = rng.choice(pool, size=PER_FLIGHT, replace=False).tolist()
        incident_id = f"{f['carrier']}{f['flight']}-{f['origin']}-2013-03-08"
        for delay in _updates(f["arr_delay"], policy):
            incident = Incident(
                incident_id=incident_id,
                kind="flight_delay",
                occurred_at=f["time_hour"],
                facts=FlightFacts(
                    delay_minutes=delay,
                    flight=f"{f['carrier']}{f['flight']}",
                    origin=f["origin"],
                    destination=f["dest"],
                    arrival_delay_minutes=delay,
                    carrier_country="US",
                ),
            )
            now = f["time_hour"] + timedelta(minutes=delay)
            apply_update(runtime.parts(), incident, passengers, now)
        plan.append(
            (
                incident_id,
                f["arr_delay"],
                len({policy.step(d) for d in _updates(f["arr_delay"], policy)}),
            )
        )
    expected = pl.DataFrame(plan, schema=["incident_id", "arr_delay", "steps"], orient="row")
    stored = pl.concat([runtime.ledger.decisions(i) for i in expected["incident_id"]])
    return expected, stored


def check_one_row_per_passenger_per_step(expected: pl.DataFrame, stored: pl.DataFrame) -> None:
    counts = stored.group_by("incident_id").len().join(expected, on="incident_id")
    assert counts.height == expected.height == 40
    assert (counts["len"] == counts["steps"] * PER_FLIGHT).all()
    assert stored.group_by("incident_id", "step", "customer_id").len()["len"].max() == 1


def check_one_apology_per_incident_then_updates(stored: pl.DataFrame) -> None:
    apologies = stored.filter(pl.col("message_kind") == "apology")
    assert apologies.group_by("incident_id", "customer_id").len()["len"].max() == 1
    first = stored.group_by("incident_id", "customer_id").agg(pl.col("step").min().alias("s"))
    joined = apologies.join(first, on=["incident_id", "customer_id"])
    assert (joined["step"] == joined["s"]).all()


def check_caps_and_human_flags_across_the_day(runtime: Runtime, stored: pl.DataFrame) -> None:
    perk_incidents = (
        stored.filter(pl.col("perk_id").is_not_null())
        .group_by("customer_id")
        .agg(pl.col("incident_id").n_unique().alias("n"))
    )
    assert perk_incidents["n"].max() == runtime.parts().contact.max_perks  # reached, never passed
    capped = stored.filter(pl.col("reasons").str.contains("contact cap"))
    assert capped.height > 0 and capped["perk_id"].null_count() == capped.height
    hit_twice = stored.group_by("customer_id").agg(pl.col("incident_id").n_unique().alias("n"))
    assert hit_twice.filter(pl.col("n") > 1).height > 0
    assert stored.filter(pl.col("needs_human")).height > 0


def check_costs_add_up_per_incident(
    runtime: Runtime, expected: pl.DataFrame, stored: pl.DataFrame
) -> None:
    for incident_id in expected["incident_id"].head(10):
        steps = runtime.ledger.summary(incident_id)
        mine = stored.filter(pl.col("incident_id") == incident_id)
        assert steps["cost"].sum() == pytest.approx(mine["charged_cost"].fill_null(0).sum())
        assert steps["cost"].sum() == pytest.approx(runtime.ledger.spent(incident_id))
        assert (
            steps["decisions"].to_list()
            == mine.group_by("step").len().sort("step")["len"].to_list()
        )
    assert stored["charged_cost"].fill_null(0).sum() > 0


def check_us_refund_rule_from_three_hours(expected: pl.DataFrame, stored: pl.DataFrame) -> None:
    last = stored.join(expected, on="incident_id").filter(
        pl.col("step") == pl.col("step").max().over("incident_id")
    )
    regimes = last.with_columns(
        dot=pl.col("entitlements").map_elements(
            lambda e: any(x["regime"] == "US-DOT" for x in json.loads(e)), return_dtype=pl.Boolean
        )
    )
    assert regimes.filter(pl.col("arr_delay") >= 180)["dot"].all()
    assert not regimes.filter(pl.col("arr_delay") < 180)["dot"].any()


def test_a_snowy_day_in_new_york(runtime: Runtime) -> None:
    expected, stored = replay(runtime)
    check_one_row_per_passenger_per_step(expected, stored)
    check_one_apology_per_incident_then_updates(stored)
    check_caps_and_human_flags_across_the_day(runtime, stored)
    check_costs_add_up_per_incident(runtime, expected, stored)
    check_us_refund_rule_from_three_hours(expected, stored)
