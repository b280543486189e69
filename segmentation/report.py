"""One static HTML page about a segmentation version, with charts as inline SVG.

The page must open offline and be mailed around, so it carries everything itself: no
scripts, fonts or styles from the network. Python works out every chart's geometry (bars,
heatmap cells, PCA points); the Jinja template only places it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from segmentation.drift import FLAG_ABOVE, DriftReport
from segmentation.features import feature_matrix
from segmentation.html import PALETTE, colour, template_env, write_report
from segmentation.model import Segmentation
from segmentation.profiles import objection

__all__ = ["PALETTE", "diverging", "render_report", "write_report"]

TEMPLATES = Path(__file__).parent / "templates"
_Z_LIMIT = 2.5
_LABEL_W = 210  # room for segment and feature names left of a chart


def diverging(z: float) -> str:
    """Blue (below average) through near-white to red (above), clamped at ±2.5."""
    t = max(-1.0, min(1.0, z / _Z_LIMIT))
    low, mid, high = (33, 102, 172), (247, 247, 247), (178, 24, 43)
    end = high if t > 0 else low
    rgb = [round(m + (e - m) * abs(t)) for m, e in zip(mid, end, strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _sizes(model: Segmentation) -> dict[str, Any]:
    rows = max(model.card.rows, 1)
    segs = sorted(model.card.segments, key=lambda s: -s.size)
    top = max(s.size for s in segs)
    bars = [
        {
            "name": s.name,
            "y": 10 + i * 30,
            "w": 420 * s.size / top,
            "label": f"{s.size:,} ({s.size / rows:.1%})",
            "colour": colour(s.cluster),
        }
        for i, s in enumerate(segs)
    ]
    return {"bars": bars, "height": 20 + 30 * len(segs), "label_w": _LABEL_W}


def _heatmap(model: Segmentation) -> dict[str, Any]:
    columns = model.card.spec.outputs()
    cell_w, cell_h, top = 78, 30, 160
    rows = []
    for i, s in enumerate(sorted(model.card.segments, key=lambda s: s.cluster)):
        cells = []
        for j, c in enumerate(columns):
            z = s.zscores.get(c, 0.0)
            cells.append(
                {
                    "x": _LABEL_W + j * cell_w,
                    "fill": diverging(z),
                    "text": f"{z:+.1f}" if round(z, 1) else "0.0",
                    "ink": "#ffffff" if abs(z) > 1.5 else "#222222",
                    "title": f"{s.name} · {c}: z = {z:+.2f}",
                }
            )
        rows.append({"name": s.name, "y": top + i * cell_h, "cells": cells})
    width = _LABEL_W + cell_w * len(columns) + 150  # rotated labels lean right
    legend_y = top + cell_h * len(rows) + 30
    ticks = [
        {"x": _LABEL_W + 300 * (v + _Z_LIMIT) / (2 * _Z_LIMIT), "label": f"{v:+g}" if v else "0"}
        for v in (-2.5, -1.0, 0.0, 1.0, 2.5)
    ]
    return {
        "rows": rows,
        "columns": [
            {"x": _LABEL_W + j * cell_w + cell_w / 2, "label": c} for j, c in enumerate(columns)
        ],
        "cell_w": cell_w,
        "cell_h": cell_h,
        "top": top,
        "width": max(width, _LABEL_W + 340),
        "legend_y": legend_y,
        "legend_x": _LABEL_W,
        "ticks": ticks,
        "stops": [
            {"offset": f"{100 * t:.0f}%", "colour": diverging(-_Z_LIMIT + 2 * _Z_LIMIT * t)}
            for t in np.linspace(0, 1, 11)
        ],
        "height": legend_y + 50,
    }


def _scatter(model: Segmentation, profiles: pl.DataFrame, points: int, seed: int) -> dict[str, Any]:
    """Sampled profiles on the first two principal components of the scaled features."""
    sample = profiles if profiles.height <= points else profiles.sample(n=points, seed=seed)
    matrix = feature_matrix(sample, model.card.spec)
    scaled = np.asarray(model.pipeline[:-1].transform(matrix), dtype=np.float64)
    clusters = model.predict(matrix)
    mean = scaled.mean(axis=0)
    _, singular, vt = np.linalg.svd(scaled - mean, full_matrices=False)
    axes = vt[:2].T if vt.shape[0] >= 2 else np.eye(scaled.shape[1], 2)
    xy = (scaled - mean) @ axes
    variance = singular**2 / max(float((singular**2).sum()), 1e-12)
    size, pad = 520, 40
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi - lo > 1e-9, hi - lo, 1.0)

    def place(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        unit = (v - lo) / span
        return np.column_stack([pad + unit[:, 0] * size, pad + (1 - unit[:, 1]) * size])

    at = place(xy)
    from segmentation.estimators import centers

    centre_at = place((np.asarray(centers(model.pipeline), dtype=np.float64) - mean) @ axes)
    by_cluster = {s.cluster: s for s in model.card.segments}
    dots = [
        {"x": round(float(x), 1), "y": round(float(y), 1), "colour": colour(int(c))}
        for (x, y), c in zip(at, clusters, strict=True)
    ]
    labels = [
        {
            "x": round(float(np.clip(x, pad, pad + size)), 1),
            "y": round(float(np.clip(y, pad, pad + size)), 1),
            "name": by_cluster[i].name,
        }
        for i, (x, y) in enumerate(centre_at)
        if i in by_cluster
    ]
    legend = [
        {"name": s.name, "colour": colour(s.cluster), "y": pad + 10 + i * 24}
        for i, s in enumerate(sorted(model.card.segments, key=lambda s: s.cluster))
    ]
    return {
        "dots": dots,
        "labels": labels,
        "legend": legend,
        "size": size,
        "pad": pad,
        "legend_x": pad + size + 30,
        "width": pad + size + 240,
        "height": pad * 2 + size + 20,
        "x_label": f"PC1 ({variance[0]:.0%} of variance)",
        "y_label": f"PC2 ({variance[1] if len(variance) > 1 else 0:.0%} of variance)",
        "points": len(dots),
    }


def _drift(drift: DriftReport | None) -> dict[str, Any] | None:
    if drift is None:
        return None
    top = max([f.psi for f in drift.features] + [drift.segment_psi, 0.3])
    scale = 400 / top
    bars = [
        {
            "name": f.name,
            "y": 20 + i * 28,
            "w": max(f.psi * scale, 1.0),
            "label": f"{f.psi:.3f}",
            "colour": "#e15759" if f.flagged else "#edc948" if f.psi > 0.1 else "#59a14f",
        }
        for i, f in enumerate([*drift.features])
    ]
    height = 40 + 28 * len(bars)
    share_top = max([max(s.train_share, s.new_share) for s in drift.segments] + [0.01])
    shares = [
        {
            "name": s.name,
            "y": 20 + i * 44,
            "train_w": 380 * s.train_share / share_top,
            "new_w": 380 * s.new_share / share_top,
            "train": f"{s.train_share:.1%}",
            "new": f"{s.new_share:.1%}",
        }
        for i, s in enumerate(drift.segments)
    ]
    return {
        "report": drift,
        "bars": bars,
        "height": height,
        "label_w": _LABEL_W,
        "lines": [
            {"x": _LABEL_W + v * scale, "label": f"{v:g}", "flag": v >= FLAG_ABOVE}
            for v in (0.1, FLAG_ABOVE)
        ],
        "shares": shares,
        "shares_height": 30 + 44 * len(shares),
    }


def _protected(model: Segmentation, assigned: pl.DataFrame) -> list[dict[str, Any]]:
    """Per protected column present: each segment's split across its groups, as 100% bars."""
    columns = sorted(model.card.spec.protected_columns() & set(assigned.columns))
    result = []
    for column in columns:
        values = pl.col(column)
        if column == "birth_year":
            values = ((values // 10) * 10).cast(pl.String) + "s"
        group = values.cast(pl.String).fill_null("unknown").alias("group")
        counts = assigned.group_by("segment", group).len()
        groups = sorted(counts["group"].unique().to_list())
        colours = {g: colour(i) for i, g in enumerate(groups)}
        population = assigned.select(group).to_series().value_counts(name="n")
        pop_share = dict(
            zip(population["group"], (population["n"] / assigned.height).to_list(), strict=True)
        )
        rows = []
        names = [s.name for s in sorted(model.card.segments, key=lambda s: -s.size)]
        for i, name in enumerate(["all customers", *names]):
            part = counts if name == "all customers" else counts.filter(pl.col("segment") == name)
            total = max(int(part["len"].sum()), 1)
            by_group = part.group_by("group").agg(pl.col("len").sum())
            share = dict(zip(by_group["group"], (by_group["len"] / total).to_list(), strict=True))
            x, parts = float(_LABEL_W), []
            for g in groups:
                w = 420 * share.get(g, 0.0)
                parts.append(
                    {
                        "x": x,
                        "w": w,
                        "colour": colours[g],
                        "label": f"{share.get(g, 0.0):.0%}" if w > 28 else "",
                        "title": f"{name} · {g}: {share.get(g, 0.0):.1%}",
                    }
                )
                x += w
            gap = max(abs(share.get(g, 0.0) - pop_share.get(g, 0.0)) for g in groups)
            rows.append({"name": name, "y": 10 + i * 30, "parts": parts, "gap": f"{gap:.1%}"})
        result.append(
            {
                "column": column,
                "rows": rows,
                "legend": [{"group": g, "colour": colours[g]} for g in groups],
                "height": 20 + 30 * len(rows),
                "label_w": _LABEL_W,
            }
        )
    return result


def render_report(
    model: Segmentation,
    profiles: pl.DataFrame,
    drift: DriftReport | None = None,
    *,
    points: int = 3_000,
    seed: int = 0,
) -> str:
    """The HTML page for `model`, with `profiles` for the scatter and protected split.

    Customers who objected to profiling are not drawn or counted, as in training.
    """
    profiles = profiles.filter(~objection(profiles.schema))
    assigned = model.assign(profiles)
    return (
        template_env(TEMPLATES)
        .get_template("report.html.j2")
        .render(
            card=model.card,
            generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            profiles_rows=profiles.height,
            sizes=_sizes(model),
            heatmap=_heatmap(model),
            scatter=_scatter(model, profiles, points, seed),
            drift=_drift(drift),
            protected=_protected(model, assigned),
            palette=PALETTE,
        )
    )
