"""The offers report: which perks each segment accepts, what they cost, what they change.

One static HTML page with inline SVG (mailable, opens offline). Numbers come from the
ledger's decisions joined with their feedback (`offers.learning.outcomes.load_outcomes`).
Every rate shows the counts behind it and a 95% interval (Wilson for a rate, Newcombe's
for lift, a difference of two rates, in percentage points); charts are Vega-Lite rendered
to SVG on the server (`segmentation.charts`), with a table where a chart would say little.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from offers.learning.intervals import Z95, difference, wilson
from offers.learning.outcomes import load_outcomes
from offers.ledger import Ledger
from segmentation.charts import interval_bars, render_svg, small_lines
from segmentation.html import colour, template_env, write_report

__all__ = ["MIN_PERIODS", "TEMPLATES", "offers_tables", "render_offers_report", "write_report"]

TEMPLATES = Path(__file__).parent / "templates"
#: With fewer periods than this, acceptance over time is a table: a line needs some points.
MIN_PERIODS = 4
_POINTS = "format(datum.value * 100, '+.0f') + ' pts'"
_PERCENT = "format(datum.value * 100, '.0f') + '%'"


def offers_tables(outcomes: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The report's numbers as frames: by segment x perk, lift, complaints, over time."""
    perks = outcomes.filter(pl.col("perk_id").is_not_null())
    delivered = perks.filter("delivered")
    by_perk = (
        delivered.group_by("segment", "perk_id")
        .agg(
            delivered=pl.len(),
            redeemed=pl.col("redeemed").sum(),
            rating=pl.col("rating").mean(),
            ratings=pl.col("rating").count(),
            complaints=pl.col("complaint").sum(),
            cost=pl.col("charged_cost").fill_null(0.0).sum(),
        )
        .with_columns(
            acceptance=pl.col("redeemed") / pl.col("delivered"),
            cost_per_accepted=pl.when(pl.col("redeemed") > 0).then(
                pl.col("cost") / pl.col("redeemed")
            ),
        )
        .sort("segment", "acceptance", descending=[False, True])
    )
    sent = outcomes.filter("delivered")
    lift = (
        sent.with_columns(arm=pl.when("holdout").then(pl.lit("holdout")).otherwise(pl.lit("perk")))
        .filter(pl.col("holdout") | pl.col("perk_id").is_not_null())
        .group_by("segment")
        .agg(
            perk_n=(pl.col("arm") == "perk").sum(),
            holdout_n=(pl.col("arm") == "holdout").sum(),
            perk_returned=pl.col("returned").filter(pl.col("arm") == "perk").sum(),
            holdout_returned=pl.col("returned").filter(pl.col("arm") == "holdout").sum(),
            perk_return=pl.col("returned").filter(pl.col("arm") == "perk").mean(),
            holdout_return=pl.col("returned").filter(pl.col("arm") == "holdout").mean(),
        )
        .with_columns(lift=pl.col("perk_return") - pl.col("holdout_return"))
        .sort("segment")
    )
    complaints = (
        sent.group_by("incident_id")
        .agg(
            at=pl.col("created_at").min(),
            delivered=pl.len(),
            complaints=pl.col("complaint").sum(),
        )
        .with_columns(rate=pl.col("complaints") / pl.col("delivered"))
        .sort("at")
    )
    times = outcomes["created_at"]
    wide = outcomes.height > 0 and (times.max() - times.min()) > timedelta(days=21)  # type: ignore[operator]
    every = "1w" if wide else "1d"
    over_time = (
        delivered.with_columns(period=pl.col("created_at").dt.truncate(every))
        .group_by("segment", "perk_id", "period")
        .agg(delivered=pl.len(), acceptance=pl.col("redeemed").mean())
        .sort("segment", "perk_id", "period")
    )
    return {"by_perk": by_perk, "lift": lift, "complaints": complaints, "over_time": over_time}


def _with_intervals(
    tables: dict[str, pl.DataFrame], z: float = Z95
) -> dict[str, list[dict[str, Any]]]:
    """The tables as rows, each rate with its 95% interval (`*_low`, `*_high`); one row per
    segment, perk or incident, so a loop here is over a handful of groups, not customers."""
    by_perk = []
    for r in tables["by_perk"].to_dicts():
        low, high = wilson(r["acceptance"], r["delivered"], z)
        by_perk.append(r | {"acceptance_low": low, "acceptance_high": high})
    lift = []
    for r in tables["lift"].to_dicts():
        found = difference(
            r["perk_returned"], r["perk_n"], r["holdout_returned"], r["holdout_n"], z
        )
        lift.append(r | {"lift_low": found and found[1], "lift_high": found and found[2]})
    complaints = []
    for r in tables["complaints"].to_dicts():
        low, high = wilson(r["rate"], r["delivered"], z)
        complaints.append(r | {"rate_low": low, "rate_high": high})
    return {"by_perk": by_perk, "lift": lift, "complaints": complaints}


def _charts(
    rows: dict[str, list[dict[str, Any]]], over_time: pl.DataFrame, colours: dict[str, str]
) -> dict[str, str | None]:
    """The SVG charts, or None where there is nothing (or too little) to draw."""
    lift = [
        {"label": r["segment"], "value": r["lift"], "low": r["lift_low"], "high": r["lift_high"]}
        for r in rows["lift"]
        if r["lift"] is not None
    ]
    complaints = [
        {
            "label": r["incident_id"],
            "value": r["rate"],
            "low": r["rate_low"],
            "high": r["rate_high"],
        }
        for r in rows["complaints"][-30:]
    ]
    lines = [
        {
            "segment": r["segment"],
            "perk": r["perk_id"],
            "period": r["period"].strftime("%Y-%m-%d"),
            "acceptance": r["acceptance"],
        }
        for r in over_time.to_dicts()
    ]
    enough = over_time["period"].n_unique() >= MIN_PERIODS
    return {
        "lift": render_svg(
            interval_bars(lift, "lift over holdout, percentage points (95% interval)", _POINTS),
            "lift over holdout per segment, with 95% intervals",
        )
        if lift
        else None,
        "complaints": render_svg(
            interval_bars(complaints, "complaints per delivered message (95% interval)", _PERCENT),
            "complaint rate per incident, with 95% intervals",
        )
        if complaints
        else None,
        "over_time": render_svg(
            small_lines(lines, colours), "acceptance over time per segment and perk"
        )
        if lines and enough
        else None,
    }


def render_offers_report(
    ledger: Ledger, now: datetime, span: timedelta, back: str | None = None
) -> str:
    """The HTML page for the decisions of the last `span`; `back` links to where it was
    opened from (the admin pages)."""
    outcomes = load_outcomes(ledger, now - span)
    tables = offers_tables(outcomes)
    perk_ids = sorted(set(outcomes["perk_id"].drop_nulls().to_list()))
    colours = {p: colour(i) for i, p in enumerate(perk_ids)}
    rows = _with_intervals(tables)
    delivered = outcomes.filter("delivered")
    return (
        template_env(TEMPLATES)
        .get_template("offers_report.html.j2")
        .render(
            generated_at=now.strftime("%Y-%m-%d %H:%M UTC"),
            since=(now - span).strftime("%Y-%m-%d"),
            facts={
                "decisions": outcomes.height,
                "perks": int(outcomes["perk_id"].is_not_null().sum()),
                "delivered": delivered.height,
                "redeemed": int(delivered["redeemed"].sum()),
                "complaints": int(delivered["complaint"].sum()),
            },
            by_perk=rows["by_perk"],
            lift=rows["lift"],
            complaints=rows["complaints"][-30:],
            over_time=tables["over_time"].to_dicts(),
            colours=colours,
            charts=_charts(rows, tables["over_time"], colours),
            min_periods=MIN_PERIODS,
            back=back,
        )
    )
