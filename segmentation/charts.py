"""Charts for the HTML reports: Vega-Lite specifications rendered to static SVG on the server.

Vega-Lite draws the axes, ticks, labels, legends and interval whiskers; `vl-convert` (Vega's
own renderer, bundled: no network, no browser, no JavaScript on the page) turns a spec into
an SVG string that is inlined in the page, so a report stays one self-contained file.
The renderer is imported on first use: it costs a few hundred milliseconds to start.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from segmentation.html import PALETTE

__all__ = ["interval_bars", "render_svg", "small_lines"]

#: The renderer measures labels with the machine's default sans-serif; the page shows them
#: in the reader's: close enough, with room to spare (`padding`, `labelLimit`).
_FONT = "sans-serif"
_CONFIG: dict[str, Any] = {
    "font": _FONT,
    "padding": {"left": 12, "right": 16, "top": 6, "bottom": 6},
    "view": {"stroke": None},
    "axis": {"labelFontSize": 12, "titleFontSize": 12, "titleFontWeight": "normal",
             "gridColor": "#e4e7eb", "labelColor": "#1f2933", "titleColor": "#616e7c"},
    "legend": {"labelFontSize": 12, "titleFontSize": 12, "orient": "bottom"},
    "header": {"labelFontSize": 13, "labelFontWeight": "bold", "title": None},
}  # fmt: skip
_IDS = re.compile(r'\bid="([^"]+)"')


def render_svg(spec: dict[str, Any], label: str) -> str:
    """The chart as an inline SVG element: `label` is what a screen reader says; element ids
    are made unique so several charts can share one page."""
    import vl_convert

    svg = vl_convert.vegalite_to_svg({**spec, "config": _CONFIG | spec.get("config", {})})
    # The renderer numbers ids (clip1, clip2…) across calls: renumber them per chart, then
    # prefix them with the chart's digest, so ids are unique on a page and the same chart
    # renders to the same bytes every time.
    names = list(dict.fromkeys(_IDS.findall(svg)))
    for i, name in enumerate(names):
        svg = svg.replace(f'id="{name}"', f'id="@{i}@"').replace(f"url(#{name})", f"url(#@{i}@)")
    prefix = f"c{hashlib.sha1(svg.encode()).hexdigest()[:8]}-"
    svg = re.sub(r"@(\d+)@", lambda m: f"{prefix}{m[1]}", svg)
    # inline SVG in HTML needs no namespace (and names no address the page could reach)
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{_escape(label)}" ', 1)
    return svg


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def interval_bars(
    rows: Sequence[dict[str, Any]],
    axis_title: str,
    label_expr: str,
    width: int = 360,
) -> dict[str, Any]:
    """Horizontal bars of `value` per `label` with a whisker from `low` to `high` and a rule
    at zero; a negative value draws to the left, in red. `label_expr` formats axis ticks
    (a Vega expression over `datum.value`), `text` beside each bar says value and count."""
    x: dict[str, Any] = {
        "field": "value",
        "type": "quantitative",
        "title": axis_title,
        "axis": {"labelExpr": label_expr, "tickCount": 5, "labelOverlap": True},
    }
    y = {
        "field": "label",
        "type": "nominal",
        "sort": None,
        "title": None,
        "axis": {"labelLimit": 220, "labelPadding": 6},
    }
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": width,
        "height": {"step": 28},
        "data": {"values": list(rows)},
        "layer": [
            {
                "mark": {"type": "bar", "height": 16},
                "encoding": {
                    "y": y,
                    "x": x,
                    "color": {
                        "condition": {"test": "datum.value < 0", "value": PALETTE[2]},
                        "value": PALETTE[0],
                    },
                },
            },
            {
                "mark": {"type": "rule", "strokeWidth": 1.5, "color": "#1f2933"},
                "encoding": {
                    "y": y,
                    "x": {"field": "low", "type": "quantitative"},
                    "x2": {"field": "high"},
                },
            },
            {
                "mark": {"type": "tick", "orient": "vertical", "color": "#1f2933", "size": 10},
                "encoding": {"y": y, "x": {"field": "low", "type": "quantitative"}},
            },
            {
                "mark": {"type": "tick", "orient": "vertical", "color": "#1f2933", "size": 10},
                "encoding": {"y": y, "x": {"field": "high", "type": "quantitative"}},
            },
            {
                "data": {"values": [{"zero": 0}]},
                "mark": {"type": "rule", "color": "#616e7c"},
                "encoding": {"x": {"field": "zero", "type": "quantitative"}},
            },
        ],
    }


def small_lines(
    rows: Sequence[dict[str, Any]], colours: dict[str, str], width: int = 240
) -> dict[str, Any]:
    """One small chart per `segment`: `acceptance` (0-100%) per `period`, a line per `perk`."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": list(rows)},
        "facet": {"field": "segment", "type": "nominal", "title": None},
        "columns": 2,
        "spec": {
            "width": width,
            "height": 130,
            "mark": {"type": "line", "point": True, "strokeWidth": 2},
            "encoding": {
                "x": {
                    "field": "period",
                    "type": "temporal",
                    "title": None,
                    "axis": {"format": "%d %b", "tickCount": 4},
                },
                "y": {
                    "field": "acceptance",
                    "type": "quantitative",
                    "title": "acceptance",
                    "scale": {"domain": [0, 1]},
                    "axis": {"format": ".0%", "tickCount": 3},
                },
                "color": {
                    "field": "perk",
                    "type": "nominal",
                    "title": "perk",
                    "scale": {"domain": list(colours), "range": list(colours.values())},
                },
            },
        },
    }
