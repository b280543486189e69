"""Honest uncertainty in the offers report: every rate with its counts and a 95% interval,
lift in percentage points with Newcombe's interval, negative bars drawn, few days as a table."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from api.runtime import Runtime
from offers.learning.intervals import difference, wilson
from offers.learning.report import render_offers_report
from segmentation.charts import interval_bars, render_svg
from tests.test_report_offers import _play


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10
        ((56, 70, 48, 80), (0.2, 0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.6, 0.1705, 0.8090)),
        ((6, 7, 2, 7), (0.5714, 0.0582, 0.8062)),
        ((5, 56, 0, 29), (0.0893, -0.0381, 0.1926)),
    ],
)
def test_lift_interval_is_newcombes(
    counts: tuple[int, int, int, int], expected: tuple[float, float, float]
) -> None:
    found = difference(*counts)
    assert found is not None
    assert found == pytest.approx(expected, abs=5e-4)


def test_lift_from_four_held_out_is_wide() -> None:
    """+4.1 points from a holdout of 4 is no finding: the interval says so."""
    found = difference(41, 100, 1, 4)
    assert found is not None
    _, low, high = found
    assert low < 0 < high and high - low > 0.6  # spans zero, wider than 60 points
    assert wilson(0.25, 4, 1.959964)[1] > 0.6  # one complaint in 4 messages: up to 70%


def test_a_negative_bar_is_drawn_to_the_left_in_red() -> None:
    rows = [
        {"label": "gain", "value": 0.1, "low": 0.02, "high": 0.2},
        {"label": "loss", "value": -0.08, "low": -0.15, "high": -0.01},
    ]
    svg = render_svg(interval_bars(rows, "lift", "datum.value"), "lift")
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert "#e15759" in svg and "#4e79a7" in svg  # red for the loss, blue for the gain
    assert ">gain<" in svg and ">loss<" in svg  # the axis labels each bar


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_report_shows_counts_and_intervals(runtime: Runtime) -> None:
    _play(runtime, incidents=2)
    html = render_offers_report(runtime.ledger, datetime.now(UTC), timedelta(days=90))
    lift = html.split("<h2>Lift over holdout</h2>", 1)[1].split("</section>", 1)[0]
    assert re.search(r"\d+ of [\d,]+", lift)  # the counts behind each share
    assert re.search(r"[+\u2212]\d+\.\d points to [+\u2212]\d+\.\d points", lift)
    assert not re.search(r"[+\u2212-]\d+\.\d%", lift)  # a difference of shares is in points
    complaints = html.split("<h2>Complaint rate after incidents</h2>", 1)[1]
    assert re.search(r"\d+ of [\d,]+</td>", complaints) and " to " in complaints
    over_time = html.split("<h2>Acceptance over time</h2>", 1)[1].split("</section>", 1)[0]
    assert "<svg" not in over_time and "here are the numbers" in over_time  # two days
    assert not re.search(r"(src|href)=\"?https?://", html) and "<script" not in html


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_analysts_read_the_report_in_admin(runtime: Runtime) -> None:
    from litestar.testing import TestClient

    from api.app import create_app
    from tests.test_admin_pages import make_key, sign_in

    with TestClient(app=create_app(runtime)) as client:
        sign_in(client, make_key(runtime, "analyst"))
        shown = client.get("/admin/report", params={"since": "30d"})
        assert shown.status_code == 200 and "Lift over holdout" in shown.text
        assert 'href="/admin"' in shown.text
        assert "Content-Security-Policy" in shown.headers
        wrong = client.get("/admin/report", params={"since": "soon"})
        assert wrong.status_code == 422 and "90d" in wrong.text
        sign_in(client, make_key(runtime, "desk"))
        assert client.get("/admin/report").status_code == 403


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_report_is_in_the_openapi_document(runtime: Runtime) -> None:
    from litestar.testing import TestClient

    from api.app import create_app

    with TestClient(app=create_app(runtime)) as client:
        paths = client.get("/schema/openapi.json").json()["paths"]
    report = paths["/v1/reports/offers"]["get"]
    assert "text/html" in report["responses"]["200"]["content"]
    assert {"401", "403"} <= set(report["responses"])
