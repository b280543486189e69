"""The simulation a marketer reads: a headline per segment with the change against the live
table and its 95% interval, "not enough data" in words, the estimators behind a disclosure."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from litestar.testing import TestClient

from api.app import create_app
from api.runtime import Runtime
from offers.learning.simulate import Z95, estimate
from tests.test_admin_pages import make_key, sign_in

# (logged perk, propensity, redeemed); cost p1 = 10, p2 = 20; each row 20 times
_BASE = [("p1", 0.5, 1), ("p1", 0.5, 0), ("p2", 0.5, 1), ("p2", 0.5, 1)]
_COST = {"p1": 10.0, "p2": 20.0}


def _replayed(draft: str, live: str) -> pl.DataFrame:
    rows = [r for r in _BASE for _ in range(20)]
    return pl.DataFrame(
        {
            "segment": ["a"] * len(rows),
            "perk_id": [r[0] for r in rows],
            "propensity": [r[1] for r in rows],
            "redeemed": [bool(r[2]) for r in rows],
            "perk_cost": [_COST[r[0]] for r in rows],
            "target": [draft] * len(rows),
            "target_cost": [_COST[draft]] * len(rows),
            "live_target": [live] * len(rows),
            "live_target_cost": [_COST[live]] * len(rows),
        }
    )


def _dr_terms(rows: list[tuple[str, float, int]], target: str, cost: bool) -> list[float]:
    """Doubly robust terms by hand: q(target) + w (r - q(logged)), q = (redeemed+1)/(n+2)."""
    q = {
        p: (sum(r for lp, _, r in rows if lp == p) + 1)
        / (sum(1 for lp, _, _ in rows if lp == p) + 2)
        for p in _COST
    }
    out = []
    for logged, propensity, r in rows:
        w = (logged == target) / propensity
        if cost:
            out.append(
                q[target] * _COST[target] + w * (r * _COST[logged] - q[logged] * _COST[logged])
            )
        else:
            out.append(q[target] + w * (r - q[logged]))
    return out


@pytest.mark.parametrize("cost", [False, True])
def test_the_change_against_the_live_table_is_the_hand_computed_paired_difference(
    cost: bool,
) -> None:
    rows = [r for r in _BASE for _ in range(20)]
    draft, live = _dr_terms(rows, "p1", cost), _dr_terms(rows, "p2", cost)
    diff = [d - v for d, v in zip(draft, live, strict=True)]
    mean = statistics.fmean(diff)
    half = Z95 * statistics.stdev(diff) / len(diff) ** 0.5
    total, (segment,), missing = estimate(_replayed("p1", "p2"))
    assert not missing and total.supported and not total.too_little_data
    change = segment.change_cost if cost else segment.change_acceptance
    assert change.value == pytest.approx(mean)
    assert change.low == pytest.approx(mean - half)
    assert change.high == pytest.approx(mean + half)
    # the draft's own DR estimate is the mean of its terms (p1: 21/42 taken)
    own = segment.cost["dr"] if cost else segment.acceptance["dr"]
    assert own.value == pytest.approx(statistics.fmean(draft))
    if not cost:  # draft p1 (half taken) against live p2 (all taken): -50 points
        assert mean == pytest.approx(-0.5)
        assert change.high is not None and change.high < 0


def test_the_same_perks_as_the_live_table_are_no_change() -> None:
    total, (segment,), _ = estimate(_replayed("p2", "p2"))
    assert segment.unchanged and total.unchanged
    assert segment.change_acceptance.value == 0.0
    assert (segment.change_acceptance.low, segment.change_acceptance.high) == (0.0, 0.0)


@pytest.fixture
def http(runtime: Runtime) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(runtime)) as client:
        yield client


def _incidents(client: TestClient[Any], runtime: Runtime, n: int) -> None:
    key = make_key(runtime, "admin")
    ids = runtime.book.frame["customer_id"].head(3 * n).to_list()
    made = []
    for i in range(n):
        body = {
            "incident_id": f"SIM{i}",
            "kind": "flight_delay",
            "occurred_at": "2026-11-25T07:05:00+00:00",
            "facts": {
                "delay_minutes": 50 + i,
                "flight": "MG9",
                "origin": "TPE",
                "destination": "LHR",
            },
            "customers": ids[i * 3 : i * 3 + 3],
        }
        answer = client.post("/v1/incidents", json=body, headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 201, answer.text
        made += [d["decision_id"] for d in answer.json()["decisions"]]
    event = {
        "event_id": "e1",
        "decision_id": made[0],
        "kind": "rating",
        "rating": 5,
        "occurred_at": "2026-11-26T07:05:00+00:00",
    }
    fb = client.post(
        "/v1/feedback", json={"events": [event]}, headers={"Authorization": f"Bearer {key}"}
    )
    assert fb.status_code < 300, fb.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_twenty_incidents_and_one_rating_read_as_headlines(
    http: TestClient[Any], runtime: Runtime
) -> None:
    _incidents(http, runtime, 20)
    sign_in(http, make_key(runtime, "marketing"))
    page = http.get("/admin/offers/flight-delay/simulate")
    assert page.status_code == 200, page.text[-3000:]
    html = page.text
    assert html.count('class="headline"') >= 2  # all customers and at least one segment
    assert "Not enough data" in html  # 60 decisions: too few for any estimate
    assert "Same perks as the live table: no change." in html  # no draft: the live table
    assert "<details" in html and "acceptance (SNIPS)" in html.split("<details", 1)[1]
    assert "in EUR" in html


def test_an_estimate_with_a_value_but_no_interval_still_renders() -> None:
    from datetime import UTC, datetime

    from api.admin.render import _ENV
    from offers.learning.simulate import METHOD, Estimate, GroupEstimate, Simulation

    bare = Estimate(value=0.1, low=None, high=None)
    group = GroupEstimate(
        segment="road-warrior", decisions=40, matched=40, supported=True,
        effective_size=40.0, mean_weight=1.0, too_little_data=False,
        logged_acceptance=0.1, logged_cost=1.0, issued_cost=400.0,
        acceptance={"ips": bare, "snips": bare, "dr": bare},
        cost={"ips": bare, "snips": bare, "dr": bare},
        change_acceptance=bare, change_cost=bare,
    )  # fmt: skip
    sim = Simulation(
        table="t", against="t", since=datetime.now(UTC), decisions=40, method=METHOD,
        total=group, segments=[group], no_support=[],
    )  # fmt: skip
    html = _ENV.get_template("simulate.html.j2").render(
        session=None, csrf_field="_csrf", path="/admin", name="t", since="90d", sim=sim,
        since_errors=(), problem=None,
    )  # fmt: skip
    assert 'Acceptance: <strong>10.0% <span class="note">(no interval)</span>' in html
    assert '+10.0 points <span class="note">(no interval)</span>' in html
