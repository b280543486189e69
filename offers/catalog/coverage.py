"""Coverage: which segments of the served segmentation a table speaks to, and which it doesn't.

A segment is *covered* when some rule other than the fallback picks it out: by its name, by
the persona it is, or by a profile condition its typical customer meets. An uncovered
segment still gets something (the rules for everyone else), but nothing chosen for it, so
promotion and validation name those segments with their sizes. `resolve` turns persona
conditions into the segment lists the engine matches on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from offers.catalog.columns import targets_customers
from offers.catalog.fields import Condition
from offers.catalog.personas import match_personas, trait_holds
from offers.catalog.tables import OfferTable, Rule

__all__ = ["Coverage", "SegmentCoverage", "coverage", "coverage_drop", "personas_of", "resolve"]

SegmentTraits = Mapping[str, Mapping[str, Any]]


class SegmentCoverage(msgspec.Struct, frozen=True, kw_only=True):
    """One segment: its size, the persona it is, the rules that pick it out."""

    segment: str
    size: int
    persona: str | None
    rules: list[str]
    covered: bool


class Coverage(msgspec.Struct, frozen=True, kw_only=True):
    """Per segment of one segmentation, for one table; `share` of customers covered."""

    table: str
    segments: list[SegmentCoverage]
    share: float

    @property
    def uncovered(self) -> list[SegmentCoverage]:
        return [s for s in self.segments if not s.covered]

    def summary(self) -> str:
        """One line: how many segments and customers the table's own rules reach."""
        covered = sum(s.covered for s in self.segments)
        line = (
            f"{self.table}: {covered} of {len(self.segments)} segments "
            f"({self.share:.0%} of customers) reach a rule chosen for them"
        )
        if self.uncovered:
            line += "; only catch-all rules for " + _names(self.uncovered)
        return line


def _names(segments: list[SegmentCoverage]) -> str:
    return ", ".join(f"{s.segment} ({s.size:,})" for s in segments)


def personas_of(table: OfferTable, traits: SegmentTraits) -> dict[str, str | None]:
    """Segment -> persona for this table's personas (None: no persona fits)."""
    return match_personas(table.personas, traits)


def _values(cond: Condition | None) -> list[str]:
    if isinstance(cond, str):
        return [cond]
    return list(cond) if isinstance(cond, list) else []


def resolve(table: OfferTable, personas: Mapping[str, str | None]) -> OfferTable:
    """The table with every `persona` condition replaced by the segments that are that
    persona today (intersected with a `segment` condition the rule also has)."""
    if not any("persona" in r.when for r in table.rules):
        return table
    members: dict[str, list[str]] = {}
    for segment, persona in sorted(personas.items()):
        if persona is not None:
            members.setdefault(persona, []).append(segment)
    rules = []
    for rule in table.rules:
        if "persona" not in rule.when:
            rules.append(rule)
            continue
        when = {c: v for c, v in rule.when.items() if c != "persona"}
        segments = [s for p in _values(rule.when["persona"]) for s in members.get(p, [])]
        if "segment" in when:
            named = set(_values(when["segment"]))
            segments = [s for s in segments if s in named]
        # No segment is this persona today: the rule matches nobody (an empty list cannot
        # be written, so a name no segment can have stands in).
        when["segment"] = sorted(set(segments)) or ["-no-segment-"]
        rules.append(msgspec.structs.replace(rule, when=when))
    return msgspec.structs.replace(table, rules=rules)


def _reaches(rule: Rule, segment: str, persona: str | None, typical: Mapping[str, Any]) -> bool:
    targeting = {c: v for c, v in rule.when.items() if targets_customers(c)}
    if rule.fallback or not targeting:
        return False
    for column, cond in targeting.items():
        if column == "segment":
            ok = segment in _values(cond)
        elif column == "persona":
            ok = persona is not None and persona in _values(cond)
        else:
            ok = trait_holds(cond, typical.get(column))
        if not ok:
            return False
    return True


def coverage(table: OfferTable, traits: SegmentTraits) -> Coverage:
    """Which segments (with `traits` from segmentation.traits) this table's rules pick out."""
    personas = personas_of(table, traits)
    rows = []
    for segment, typical in sorted(traits.items()):
        persona = personas.get(segment)
        rules = [r.id for r in table.rules if _reaches(r, segment, persona, typical)]
        rows.append(
            SegmentCoverage(
                segment=segment,
                size=int(typical.get("size") or 0),
                persona=persona,
                rules=rules,
                covered=bool(rules),
            )
        )
    total = sum(r.size for r in rows)
    share = sum(r.size for r in rows if r.covered) / total if total else 1.0
    return Coverage(table=table.name, segments=rows, share=round(share, 4))


def coverage_drop(before: Coverage | None, after: Coverage) -> str | None:
    """A warning when `after` covers a smaller share of customers than `before` (or, with no
    `before`, leaves any segment uncovered), naming the segments left to catch-all rules."""
    if not after.uncovered:
        return None
    if before is not None and after.share >= before.share:
        return None
    was = f" (was {before.share:.0%})" if before is not None else ""
    return (
        f"coverage of offer table {after.table} drops to {after.share:.0%} of customers{was}: "
        f"only catch-all rules reach {_names(after.uncovered)}"
    )
