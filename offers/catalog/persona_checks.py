"""Validation of a table's personas and of its coverage of the served segmentation.

Personas are checked on their own (ids, traits on known, unprotected columns, rules naming
them) and, when the segmentation's traits are known, against it: a persona no segment is
today is a warning, a segment that only catch-all rules reach is a warning naming its size,
and a pinned segment the segmentation lacks is an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from offers.catalog.coverage import coverage, personas_of
from offers.catalog.findings import Finding
from offers.catalog.tables import OfferTable
from segmentation.profiles import PROTECTED_COLUMNS

__all__ = ["persona_findings"]


def persona_findings(
    table: OfferTable,
    known: Set[str],
    segment_names: Set[str] | None,
    traits: Mapping[str, Mapping[str, Any]] | None,
) -> list[Finding]:
    """Every finding about personas and coverage, in table order."""
    out: list[Finding] = []

    def add(severity: str, code: str, message: str, **where: str | None) -> None:
        out.append(
            Finding(severity=severity, code=code, table=table.name, message=message, **where)  # type: ignore[arg-type]
        )

    ids: set[str] = set()
    pinned: dict[str, str] = {}
    for persona in table.personas:
        where = {"field": "id", "rule": None, "perk": None}
        if persona.id in ids:
            add("error", "duplicate-persona", f"duplicate persona {persona.id!r}", **where)
        ids.add(persona.id)
        if not persona.traits and not persona.segments:
            add(
                "error",
                "persona-empty",
                f"persona {persona.id} has neither traits nor segments: it fits no segment",
                field=f"personas.{persona.id}",
            )
        for column in persona.traits:
            field = f"personas.{persona.id}.traits.{column}"
            if column in PROTECTED_COLUMNS:
                add("error", "protected", f"{column} is a protected attribute", field=field)
            elif column not in known:
                add(
                    "warning",
                    "unknown-column",
                    f"no profile column {column!r}: persona {persona.id} fits no segment "
                    "through this trait",
                    field=field,
                )
        for segment in persona.segments:
            field = f"personas.{persona.id}.segments"
            if segment in pinned:
                add(
                    "error",
                    "pinned-twice",
                    f"segment {segment!r} is already pinned to persona {pinned[segment]}",
                    field=field,
                )
            pinned.setdefault(segment, persona.id)
            if segment_names is not None and segment not in segment_names:
                add("error", "unknown-segment", f"unknown segment {segment!r}", field=field)
    for rule in table.rules:
        cond = rule.when.get("persona")
        named = [cond] if isinstance(cond, str) else cond if isinstance(cond, list) else []
        for persona_id in named:
            if persona_id not in ids:
                add(
                    "error",
                    "unknown-persona",
                    f"unknown persona {persona_id!r}",
                    rule=rule.id,
                    field="when.persona",
                )
    if traits is None:
        return out
    matched = set(personas_of(table, traits).values())
    for persona in table.personas:
        if persona.id not in matched:
            add(
                "warning",
                "persona-unmatched",
                f"no segment of the served segmentation is persona {persona.id}: its rules "
                "reach nobody until one is (pin a segment with `segments = [...]`)",
                field=f"personas.{persona.id}",
            )
    for row in coverage(table, traits).uncovered:
        add(
            "warning",
            "segment-uncovered",
            f"segment {row.segment} ({row.size:,} customers"
            + (f", persona {row.persona}" if row.persona else ", no persona")
            + ") reaches only catch-all rules",
            field="when.segment",
        )
    return out
