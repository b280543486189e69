"""What every HTML page shares: one Jinja setup, one palette, one atomic write.

The segment report, the offers report and the admin pages each keep their own numbers and
templates; they take their setup from here so all of them escape, trim and refuse a missing
value alike. It lives in `segmentation/`, the bottom of the import order, so `offers/` and
`api/` can both use it.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

__all__ = ["PALETTE", "colour", "percent", "points", "signed_money", "template_env", "write_report"]

PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
"""Tableau 10: distinct at a glance, and kind to the common colour-vision deficiencies."""


def colour(i: int) -> str:
    """The palette's `i`-th colour, starting over after the tenth."""
    return PALETTE[i % len(PALETTE)]


def percent(x: float | None, digits: int = 1) -> str:
    """A share as a percentage ("23.4%"); "n/a" for nothing."""
    return "n/a" if x is None else f"{x * 100:.{digits}f}%"


def points(x: float | None, digits: int = 1) -> str:
    """A difference of two shares in percentage points, signed ("+2.1 points")."""
    if x is None:
        return "n/a"
    text = f"{x * 100:+.{digits}f}".replace("-", "\u2212")
    return f"{text} points"


def signed_money(x: float | None) -> str:
    """A signed amount with two decimals ("+0.40"; a true minus sign below zero)."""
    return "n/a" if x is None else f"{x:+,.2f}".replace("-", "\u2212")


def template_env(folder: Path) -> jinja2.Environment:
    """Templates from `folder`: escaped, tidy whitespace, an error for any missing value,
    and the filters every page formats numbers with (`percent`, `points`, `signed_money`)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["percent"] = percent
    env.filters["points"] = points
    env.filters["signed_money"] = signed_money
    return env


def write_report(html: str, path: Path) -> None:
    """Write atomically: a reader never sees half a page."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
