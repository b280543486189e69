"""The offers report: one static HTML file with inline charts, from decisions and feedback."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from api.cli.feedback import reports_group
from api.runtime import Runtime
from offers.decide.policy import ContactPolicy
from offers.flow import apply_update
from offers.learning.feedback import record_feedback
from offers.learning.outcomes import load_outcomes
from offers.learning.report import offers_tables
from offers.learning.world import make_world
from tests.test_feedback import settings_of


def _play(runtime: Runtime, incidents: int = 4) -> datetime:
    world = make_world(runtime.book.frame["segment"].unique().to_list(), seed=2)
    parts = replace(
        runtime.parts(),
        table=lambda _kind: world.table,
        contact=ContactPolicy(holdout_share=0.2, max_perks=100, marketing_contacts_per_window=0),
    )
    start = datetime.now(UTC) - timedelta(days=20)
    stream = world.incidents(runtime.book.frame["customer_id"], incidents, 200, start, 4)
    for i, (incident, ids) in enumerate(stream):
        decided = apply_update(parts, incident, ids, incident.occurred_at).decisions
        record_feedback(runtime.ledger, world.feedback(decided, incident.occurred_at, i), start)
    return start


def test_report_numbers_and_page(runtime: Runtime, tmp_path: Path) -> None:
    start = _play(runtime)
    tables = offers_tables(load_outcomes(runtime.ledger, start - timedelta(days=1)))
    by_perk = tables["by_perk"]
    assert by_perk["acceptance"].is_between(0, 1).all() and by_perk["delivered"].sum() > 500
    assert set(tables["lift"].columns) >= {"segment", "perk_return", "holdout_return", "lift"}
    assert tables["complaints"].height == 4
    assert tables["over_time"]["period"].n_unique() == 4  # one day per incident

    out = tmp_path / "offers.html"
    result = CliRunner().invoke(
        reports_group, ["offers", "-o", str(out), "--since", "90d"], obj=settings_of(runtime)
    )
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    for heading in (
        "Acceptance and rating by segment and perk",
        "Acceptance over time",
        "Lift over holdout",
        "Complaint rate after incidents",
        "cost per accepted",
    ):
        assert heading in html
    # Vega-Lite charts rendered on the server: axes, ticks and labels, no hand-drawn lines
    assert html.count("<svg") >= 3 and html.count("role-axis") >= 6
    assert "acceptance over time per segment and perk" in html  # four days: a line chart
    assert not re.search(r"(src|href)=\"?https?://", html)  # nothing from the network
    assert "<script" not in html


def test_an_empty_ledger_still_gives_a_page(runtime: Runtime) -> None:
    from offers.learning.report import render_offers_report

    html = render_offers_report(runtime.ledger, datetime.now(UTC), timedelta(days=90))
    assert "no delivered perks in this period" in html
