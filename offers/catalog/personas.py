"""Personas: the kinds of customer a table speaks to, described by traits, not segment names.

Segment names change whenever an analyst retrains; what marketing means ("travels for
work", "spends at the duty-free shop") does not. A table lists personas with traits over
profile columns; each segment of the served segmentation takes the first persona whose
traits hold for its typical customer (segmentation.traits), unless a persona pins it by
name (`segments = [...]`, the override). Rules then target `persona = "business"`, and the
engine sees them as the segments that persona has today (offers.catalog.coverage.resolve).

A trait holds on the typical customer: a range on a numeric column's mean (a boolean's
share of `true`), a value or list on a text column's most common value, `true`/`false` on a
boolean column's majority.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from offers.catalog.fields import Column, Condition, Id, Range, Text

__all__ = ["Persona", "match_personas", "trait_holds"]


class Persona(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A kind of customer: `traits` every condition of which holds for a segment's typical
    customer; `segments` names segments that are this persona whatever their traits."""

    id: Id
    description: Text = ""
    traits: dict[Column, Condition] = {}
    segments: list[Id] = []


def trait_holds(cond: Condition, value: Any) -> bool:
    """Whether a trait holds for one typical value (None, a missing column, never holds)."""
    if value is None:
        return False
    if isinstance(cond, Range):
        if not isinstance(value, int | float):
            return False
        return (cond.min is None or value >= cond.min) and (cond.max is None or value <= cond.max)
    if isinstance(cond, bool):
        return isinstance(value, int | float) and (value >= 0.5) == cond
    values = [cond] if isinstance(cond, str) else cond
    return str(value) in values


def match_personas(
    personas: list[Persona], traits: Mapping[str, Mapping[str, Any]]
) -> dict[str, str | None]:
    """Segment -> the persona it is (pinned first, then the first whose traits all hold)."""
    pinned = {s: p.id for p in reversed(personas) for s in p.segments}
    out: dict[str, str | None] = {}
    for segment, typical in traits.items():
        if segment in pinned:
            out[segment] = pinned[segment]
            continue
        out[segment] = next(
            (
                p.id
                for p in personas
                if p.traits and all(trait_holds(c, typical.get(col)) for col, c in p.traits.items())
            ),
            None,
        )
    return out
