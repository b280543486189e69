"""One static HTML page about a segmentation version, with charts as inline SVG.

The page must open offline and be mailed around, so it carries everything itself: no
scripts, fonts or styles from the network. Python computes the numbers (sizes, z-scores,
principal components, drift, protected splits); Vega-Lite specs (segmentation.report_charts)
rendered on the server draw them, axes and legends included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from segmentation import report_charts as charts
from segmentation.charts import render_svg
from segmentation.drift import FLAG_ABOVE, DriftReport
from segmentation.features import feature_matrix
from segmentation.html import PALETTE, colour, template_env, write_report
from segmentation.model import Segmentation
from segmentation.profiles import objection

__all__ = ["PALETTE", "diverging", "render_report", "write_report"]

TEMPLATES = Path(__file__).parent / "templates"
_Z_LIMIT = charts.Z_LIMIT


def diverging(z: float) -> str:
    """Blue (below average) through near-white to red (above), clamped at ±2.5."""
    t = max(-1.0, min(1.0, z / _Z_LIMIT))
    low, mid, high = (33, 102, 172), (247, 247, 247), (178, 24, 43)
    end = high if t > 0 else low
    rgb = [round(m + (e - m) * abs(t)) for m, e in zip(mid, end, strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _colours(model: Segmentation) -> tuple[list[str], list[str]]:
    segs = sorted(model.card.segments, key=lambda s: s.cluster)
    return [s.name for s in segs], [colour(s.cluster) for s in segs]


def _sizes(model: Segmentation) -> str:
    rows = max(model.card.rows, 1)
    data = [
        {"segment": s.name, "customers": s.size, "label": f"{s.size:,} ({s.size / rows:.1%})"}
        for s in sorted(model.card.segments, key=lambda s: -s.size)
    ]
    return render_svg(charts.size_bars(data, *_colours(model)), "segment sizes")


def _heatmap(model: Segmentation) -> str:
    columns = model.card.spec.outputs()
    data = [
        {
            "segment": s.name,
            "feature": c,
            "z": round(s.zscores.get(c, 0.0), 2),
            "text": f"{s.zscores.get(c, 0.0):+.1f}" if round(s.zscores.get(c, 0.0), 1) else "0.0",
        }
        for s in sorted(model.card.segments, key=lambda s: s.cluster)
        for c in columns
    ]
    return render_svg(charts.heatmap(data, columns), "heatmap of segment z-scores")


def _scatter(
    model: Segmentation, profiles: pl.DataFrame, points: int, seed: int
) -> tuple[str, int]:
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
    from segmentation.estimators import centers

    centre_xy = (np.asarray(centers(model.pipeline), dtype=np.float64) - mean) @ axes
    names = {s.cluster: s.name for s in model.card.segments}
    dots = [
        {"x": round(float(x), 3), "y": round(float(y), 3), "segment": names[int(c)]}
        for (x, y), c in zip(xy, clusters, strict=True)
    ]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    centres = [
        {
            "x": float(np.clip(x, lo[0], hi[0])),
            "y": float(np.clip(y, lo[1], hi[1])),
            "segment": names[i],
        }
        for i, (x, y) in enumerate(centre_xy)
        if i in names
    ]
    titles = (
        f"PC1 ({variance[0]:.0%} of variance)",
        f"PC2 ({variance[1] if len(variance) > 1 else 0:.0%} of variance)",
    )
    spec = charts.scatter(dots, centres, titles, *_colours(model))
    return render_svg(spec, "PCA scatter coloured by segment"), len(dots)


def _drift(drift: DriftReport | None) -> dict[str, Any] | None:
    if drift is None:
        return None
    bars = [
        {
            "feature": f.name,
            "psi": round(f.psi, 4),
            "state": "flagged" if f.flagged else "watch" if f.psi > 0.1 else "stable",
        }
        for f in drift.features
    ]
    shares = [
        {"segment": s.name, "data": which, "share": share}
        for s in drift.segments
        for which, share in (("training", s.train_share), ("newer data", s.new_share))
    ]
    return {
        "report": drift,
        "features": render_svg(charts.drift_bars(bars, FLAG_ABOVE), "feature drift"),
        "shares": render_svg(charts.share_bars(shares), "segment shares, training and newer"),
    }


def _protected(model: Segmentation, assigned: pl.DataFrame) -> list[dict[str, Any]]:
    """Per protected column present: each segment's split across its groups, as 100% bars,
    each row labelled with its largest gap to the whole population."""
    columns = sorted(model.card.spec.protected_columns() & set(assigned.columns))
    result = []
    for column in columns:
        values = pl.col(column)
        if column == "birth_year":
            values = ((values // 10) * 10).cast(pl.String) + "s"
        group = values.cast(pl.String).fill_null("unknown").alias("group")
        counts = assigned.group_by("segment", group).len()
        groups = sorted(counts["group"].unique().to_list())
        population = assigned.select(group).to_series().value_counts(name="n")
        pop_share = dict(
            zip(population["group"], (population["n"] / assigned.height).to_list(), strict=True)
        )
        rows, order = [], []
        names = [s.name for s in sorted(model.card.segments, key=lambda s: -s.size)]
        for name in ["all customers", *names]:
            part = counts if name == "all customers" else counts.filter(pl.col("segment") == name)
            total = max(int(part["len"].sum()), 1)
            by_group = part.group_by("group").agg(pl.col("len").sum())
            share = dict(zip(by_group["group"], (by_group["len"] / total).to_list(), strict=True))
            gap = max(abs(share.get(g, 0.0) - pop_share.get(g, 0.0)) for g in groups)
            row = name if name == "all customers" else f"{name} (gap {gap:.1%})"
            order.append(row)
            rows += [
                {"row": row, "group": g, "share": share.get(g, 0.0), "rank": i}
                for i, g in enumerate(groups)
            ]
        spec = charts.protected_split(rows, order, groups, [colour(i) for i in range(len(groups))])
        result.append({"column": column, "chart": render_svg(spec, f"{column} split by segment")})
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
    scatter, drawn = _scatter(model, profiles, points, seed)
    return (
        template_env(TEMPLATES)
        .get_template("report.html.j2")
        .render(
            card=model.card,
            generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            profiles_rows=profiles.height,
            sizes=_sizes(model),
            heatmap=_heatmap(model),
            scatter=scatter,
            points=drawn,
            drift=_drift(drift),
            protected=_protected(model, assigned),
            palette=PALETTE,
        )
    )
