"""The segmentation report's charts as Vega-Lite specifications (segmentation.charts renders
them to inline SVG): sizes, the z-score heatmap, the map of customers, drift and the split of
protected groups. Python computes the numbers; Vega-Lite draws axes, labels and legends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
Z_LIMIT = 2.5

__all__ = [
    "Z_LIMIT",
    "drift_bars",
    "heatmap",
    "protected_split",
    "scatter",
    "share_bars",
    "size_bars",
]


def _segments(names: Sequence[str], colours: Sequence[str]) -> dict[str, Any]:
    """A colour channel that gives each segment its colour everywhere in the report."""
    return {
        "field": "segment",
        "type": "nominal",
        "title": "segment",
        "scale": {"domain": list(names), "range": list(colours)},
    }


def size_bars(rows: list[dict[str, Any]], names: list[str], colours: list[str]) -> dict[str, Any]:
    """Customers per segment, largest first, each bar labelled with count and share."""
    y = {"field": "segment", "type": "nominal", "sort": None, "title": None}
    return {
        "$schema": SCHEMA,
        "width": 420,
        "height": {"step": 30},
        "data": {"values": rows},
        "layer": [
            {
                "mark": {"type": "bar", "height": 22, "cornerRadius": 3},
                "encoding": {
                    "y": y,
                    "x": {"field": "customers", "type": "quantitative", "title": "customers"},
                    "color": {**_segments(names, colours), "legend": None},
                    "tooltip": [{"field": "segment"}, {"field": "label", "title": "customers"}],
                },
            },
            {
                "mark": {"type": "text", "align": "left", "dx": 6, "fontSize": 12},
                "encoding": {
                    "y": y,
                    "x": {"field": "customers", "type": "quantitative"},
                    "text": {"field": "label"},
                },
            },
        ],
    }


def heatmap(rows: list[dict[str, Any]], features: list[str]) -> dict[str, Any]:
    """Segment x feature cells coloured by z-score (blue below, red above average)."""
    x = {
        "field": "feature",
        "type": "nominal",
        "sort": features,
        "title": None,
        "axis": {"orient": "top", "labelAngle": -35, "labelLimit": 200},
    }
    y = {"field": "segment", "type": "nominal", "sort": None, "title": None}
    return {
        "$schema": SCHEMA,
        "width": {"step": 78},
        "height": {"step": 30},
        "data": {"values": rows},
        "layer": [
            {
                "mark": {"type": "rect", "stroke": "#ffffff", "strokeWidth": 2},
                "encoding": {
                    "x": x,
                    "y": y,
                    "color": {
                        "field": "z",
                        "type": "quantitative",
                        "title": "z-score",
                        "scale": {
                            "scheme": "redblue",
                            "reverse": True,
                            "domain": [-Z_LIMIT, Z_LIMIT],
                            "clamp": True,
                        },
                        "legend": {"orient": "bottom", "gradientLength": 300},
                    },
                    "tooltip": [{"field": "segment"}, {"field": "feature"}, {"field": "z"}],
                },
            },
            {
                "mark": {"type": "text", "fontSize": 12},
                "encoding": {
                    "x": x,
                    "y": y,
                    "text": {"field": "text"},
                    "color": {
                        "condition": {"test": f"abs(datum.z) > {Z_LIMIT * 0.6}", "value": "#fff"},
                        "value": "#222",
                    },
                },
            },
        ],
    }


def scatter(
    points: list[dict[str, Any]],
    centres: list[dict[str, Any]],
    titles: tuple[str, str],
    names: list[str],
    colours: list[str],
) -> dict[str, Any]:
    """Sampled customers on two principal components, coloured by segment; segment names
    at the segments' centres."""

    def axis(field: str, title: str) -> dict[str, Any]:
        values = [p[field] for p in points] or [0.0]
        pad = (max(values) - min(values)) * 0.03 or 1.0
        return {
            "field": field,
            "type": "quantitative",
            "title": title,
            "axis": {"labels": False},
            "scale": {"domain": [min(values) - pad, max(values) + pad], "nice": False},
        }

    x, y = axis("x", titles[0]), axis("y", titles[1])
    return {
        "$schema": SCHEMA,
        "width": 520,
        "height": 520,
        "layer": [
            {
                "data": {"values": points},
                "mark": {"type": "circle", "size": 16, "opacity": 0.55},
                "encoding": {"x": x, "y": y, "color": _segments(names, colours)},
            },
            {
                "data": {"values": centres},
                "mark": {
                    "type": "text",
                    "fontSize": 13,
                    "fontWeight": "bold",
                    "stroke": "#ffffff",
                    "strokeWidth": 3,
                    "strokeOpacity": 0.8,
                },
                "encoding": {"x": x, "y": y, "text": {"field": "segment"}},
            },
            {
                "data": {"values": centres},
                "mark": {"type": "text", "fontSize": 13, "fontWeight": "bold"},
                "encoding": {"x": x, "y": y, "text": {"field": "segment"}},
            },
        ],
    }


def drift_bars(rows: list[dict[str, Any]], flag_above: float) -> dict[str, Any]:
    """PSI per feature, with rules at 0.1 (watch) and the flag threshold."""
    y = {"field": "feature", "type": "nominal", "sort": None, "title": None}
    x = {"field": "psi", "type": "quantitative", "title": "population stability index (PSI)"}
    return {
        "$schema": SCHEMA,
        "width": 400,
        "height": {"step": 28},
        "layer": [
            {
                "data": {"values": rows},
                "mark": {"type": "bar", "height": 20, "cornerRadius": 3},
                "encoding": {
                    "y": y,
                    "x": x,
                    "color": {
                        "field": "state",
                        "type": "nominal",
                        "title": None,
                        "scale": {
                            "domain": ["stable", "watch", "flagged"],
                            "range": ["#59a14f", "#edc948", "#e15759"],
                        },
                    },
                },
            },
            {
                "data": {"values": rows},
                "mark": {"type": "text", "align": "left", "dx": 6, "fontSize": 12},
                "encoding": {"y": y, "x": x, "text": {"field": "psi", "format": ".3f"}},
            },
            {
                "data": {"values": [{"psi": 0.1}, {"psi": flag_above}]},
                "mark": {"type": "rule", "strokeDash": [4, 3], "color": "#b2182b"},
                "encoding": {"x": {"field": "psi", "type": "quantitative"}},
            },
        ],
    }


def share_bars(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each segment's share in the training data beside its share in the newer data."""
    y = {"field": "segment", "type": "nominal", "sort": None, "title": None}
    return {
        "$schema": SCHEMA,
        "width": 380,
        "height": {"step": 22},
        "data": {"values": rows},
        "encoding": {
            "y": y,
            "yOffset": {"field": "data", "sort": ["training", "newer data"]},
            "x": {
                "field": "share",
                "type": "quantitative",
                "title": "share of customers",
                "axis": {"format": ".0%"},
            },
        },
        "layer": [
            {
                "mark": {"type": "bar", "height": 9},
                "encoding": {
                    "color": {
                        "field": "data",
                        "type": "nominal",
                        "title": None,
                        "scale": {
                            "domain": ["training", "newer data"],
                            "range": ["#9aa5b1", "#4e79a7"],
                        },
                    }
                },
            },
            {
                "mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 11},
                "encoding": {"text": {"field": "share", "format": ".1%"}},
            },
        ],
    }


def protected_split(
    rows: list[dict[str, Any]], order: list[str], groups: list[str], colours: list[str]
) -> dict[str, Any]:
    """100% bars: how each segment (and all customers, first) splits across the groups of
    one protected column; the row label carries the largest gap to the population."""
    return {
        "$schema": SCHEMA,
        "width": 420,
        "height": {"step": 30},
        "data": {"values": rows},
        "mark": {"type": "bar", "height": 22},
        "encoding": {
            "y": {"field": "row", "type": "nominal", "sort": order, "title": None},
            "x": {
                "field": "share",
                "type": "quantitative",
                "stack": "normalize",
                "title": "share of the segment",
                "axis": {"format": ".0%"},
            },
            "color": {
                "field": "group",
                "type": "nominal",
                "title": None,
                "scale": {"domain": groups, "range": colours},
            },
            "order": {"field": "rank"},
            "tooltip": [{"field": "row"}, {"field": "group"}, {"field": "share", "format": ".1%"}],
        },
    }
