"""The offers report: which perks each segment accepts, what they cost, what they change.

One static HTML page with inline SVG (mailable, opens offline). Numbers come from the
ledger's decisions joined with their feedback (`offers.learning.evidence.load_outcomes`); Python
works out every chart's geometry, the Jinja template only places it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from offers.learning.outcomes import load_outcomes
from offers.ledger import Ledger
from segmentation.html import colour, template_env, write_report

__all__ = ["TEMPLATES", "offers_tables", "render_offers_report", "write_report"]

TEMPLATES = Path(__file__).parent / "templates"
_W, _H, _PAD = 360, 170, 34


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


def _lines(over_time: pl.DataFrame, colours: dict[str, str]) -> list[dict[str, Any]]:
    """One small chart per segment: acceptance per period, a line per perk."""
    periods = over_time["period"].unique().sort().to_list()
    x_of = {p: i for i, p in enumerate(periods)}
    step = (_W - 2 * _PAD) / max(len(periods) - 1, 1)
    charts = []
    for (segment,), rows in over_time.group_by("segment", maintain_order=True):
        series = []
        for (perk,), line in rows.group_by("perk_id", maintain_order=True):
            points = [
                (_PAD + x_of[p] * step, _H - _PAD - a * (_H - 2 * _PAD))
                for p, a in zip(line["period"], line["acceptance"], strict=True)
            ]
            series.append(
                {
                    "perk": perk,
                    "colour": colours[str(perk)],
                    "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in points),
                    "dots": [{"x": x, "y": y} for x, y in points],
                }
            )
        charts.append({"segment": segment, "series": series})
    first = periods[0].strftime("%Y-%m-%d") if periods else ""
    last = periods[-1].strftime("%Y-%m-%d") if periods else ""
    return [dict(c, first=first, last=last) for c in charts]


def _bars(
    values: list[tuple[str, float | None]], scale: float, fmt: str = "{:.1%}"
) -> list[dict[str, Any]]:
    """Horizontal bars (label, value); `scale` is the value drawn at full width."""
    return [
        {
            "label": label,
            "y": 8 + i * 26,
            "w": 0.0 if v is None else max(0.0, (_W - 150) * v / scale),
            "text": "n/a" if v is None else fmt.format(v),
        }
        for i, (label, v) in enumerate(values)
    ]


def render_offers_report(ledger: Ledger, now: datetime, span: timedelta) -> str:
    """The HTML page for the decisions of the last `span`."""
    outcomes = load_outcomes(ledger, now - span)
    tables = offers_tables(outcomes)
    perk_ids = sorted(set(outcomes["perk_id"].drop_nulls().to_list()))
    colours = {p: colour(i) for i, p in enumerate(perk_ids)}
    lift = tables["lift"]
    complaints = tables["complaints"].tail(30)
    worst = float(complaints["rate"].fill_null(0.0).max() or 0.0) if complaints.height else 0.0  # type: ignore[arg-type]
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
            by_perk=tables["by_perk"].to_dicts(),
            lines=_lines(tables["over_time"], colours),
            colours=colours,
            lift=lift.to_dicts(),
            lift_bars=_bars(list(zip(lift["segment"], lift["lift"], strict=True)), 0.25, "{:+.1%}"),
            complaint_bars=_bars(
                list(zip(complaints["incident_id"], complaints["rate"], strict=True)),
                max(worst, 0.05),
            ),
            w=_W,
            h=_H,
            pad=_PAD,
        )
    )
