"""Validation of offer tables: every problem at once, each located by table, rule and field.

`parse_table` refuses tables that cannot be matched at all; this module reports what is
wrong with a table that can be read, so marketing sees the whole list before publishing.
Errors make publish refuse; warnings are shown and allowed. Shadowing is decided
symbolically over value sets and ranges, never by sampling customers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Set
from typing import Any

import msgspec

from offers.catalog.columns import INCIDENT_COLUMNS, default_columns
from offers.catalog.coverage import personas_of, resolve
from offers.catalog.fields import Condition, Range
from offers.catalog.findings import Finding, Severity, did_you_mean
from offers.catalog.matching import ordered_rules
from offers.catalog.persona_checks import persona_findings
from offers.catalog.tables import OfferTable, Perk, Rule
from segmentation.profiles import LANGUAGES, PROTECTED_COLUMNS

__all__ = [
    "DEFAULT_MAX_STEP",
    "INCIDENT_COLUMNS",
    "Checks",
    "Finding",
    "contains",
    "default_columns",
    "did_you_mean",
    "errors",
    "validate",
]

DEFAULT_MAX_STEP = 6


class Checks(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a table is validated against: active segment names, known columns, steps."""

    segment_names: frozenset[str] | None = None
    known_columns: frozenset[str] | None = None
    max_step: int = DEFAULT_MAX_STEP
    #: Segment -> typical values (segmentation.traits): personas and coverage are checked.
    traits: dict[str, dict[str, Any]] | None = None

    def run(self, table: OfferTable) -> list[Finding]:
        return validate(
            table,
            segment_names=self.segment_names,
            known_columns=self.known_columns,
            max_step=self.max_step,
            traits=self.traits,
        )


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


# --- symbolic reasoning over conditions ---------------------------------------------


def _bounds(r: Range) -> tuple[float, float]:
    lo = -math.inf if r.min is None else r.min
    hi = math.inf if r.max is None else r.max
    return lo, hi


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _values(cond: Condition) -> set[str] | None:
    if isinstance(cond, str):
        return {cond}
    if isinstance(cond, list):
        return set(cond)
    return None


def empty(cond: Condition) -> bool:
    """A condition no value can satisfy."""
    if isinstance(cond, Range):
        lo, hi = _bounds(cond)
        return lo > hi
    values = _values(cond)
    return values is not None and not values


def contains(wide: Condition, narrow: Condition) -> bool:
    """Every value satisfying `narrow` satisfies `wide` (False where unsure)."""
    if empty(narrow):
        return True
    if isinstance(wide, bool) or isinstance(narrow, bool):
        return wide is narrow
    wide_values, narrow_values = _values(wide), _values(narrow)
    if wide_values is not None and narrow_values is not None:
        return narrow_values <= wide_values
    if isinstance(wide, Range) and isinstance(narrow, Range):
        (wlo, whi), (nlo, nhi) = _bounds(wide), _bounds(narrow)
        return wlo <= nlo and nhi <= whi
    if isinstance(wide, Range) and narrow_values is not None:
        lo, hi = _bounds(wide)
        numbers = [_number(v) for v in narrow_values]
        return all(n is not None and lo <= n <= hi for n in numbers)
    return False


def shadows(earlier: Rule, later: Rule) -> bool:
    """`earlier` holds wherever `later` does: its conditions are weaker or equal on every column."""
    return all(
        column in later.when and contains(cond, later.when[column])
        for column, cond in earlier.when.items()
    )


def _admits(cond: Condition | None, value: str | int) -> bool:
    if cond is None:
        return True
    if isinstance(cond, bool):
        return False
    if isinstance(cond, Range):
        if isinstance(value, str):
            return False
        lo, hi = _bounds(cond)
        return lo <= value <= hi
    values = _values(cond)
    return values is not None and str(value) in values


# --- the checks ---------------------------------------------------------------------


def validate(
    table: OfferTable,
    *,
    segment_names: Set[str] | None = None,
    known_columns: Set[str] | None = None,
    max_step: int = DEFAULT_MAX_STEP,
    traits: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Finding]:
    """Every finding for `table`, errors and warnings, in table order.

    `segment_names` are the active segmentation's names (None skips that check);
    `known_columns` defaults to `default_columns()`; coverage is checked for steps 1..max_step,
    and, given the segmentation's `traits`, per segment through personas.
    """
    known = default_columns() if known_columns is None else known_columns
    out: list[Finding] = []
    name = table.name

    def add(severity: Severity, code: str, message: str, **where: Any) -> None:
        out.append(Finding(severity=severity, code=code, table=name, message=message, **where))

    perk_ids: set[str] = set()
    for perk in table.perks:
        if perk.id in perk_ids:
            add("error", "duplicate-perk", "duplicate perk id", perk=perk.id, field="id")
        perk_ids.add(perk.id)
        for lang in LANGUAGES:
            if lang not in perk.title:
                add(
                    "warning",
                    "missing-title",
                    f"no {lang} title: customers reading {lang} see the English one",
                    perk=perk.id,
                    field=f"title.{lang}",
                )
        airports = [s.airport for s in perk.stock]
        for airport in sorted({a for a in airports if airports.count(a) > 1}):
            add(
                "error",
                "duplicate-stock",
                f"stock for {airport} given twice",
                perk=perk.id,
                field="stock",
            )
    used = {p for r in table.rules for p in (r.perk, *r.alternatives)}
    for perk in table.perks:
        if perk.id not in used:
            add("warning", "unused-perk", "no rule offers this perk", perk=perk.id)

    rule_ids: set[str] = set()
    fallbacks = [r.id for r in table.rules if r.fallback]
    for rule in table.rules:
        rid = rule.id
        if rid in rule_ids:
            add("error", "duplicate-rule", "duplicate rule id", rule=rid, field="id")
        rule_ids.add(rid)
        if rule.perk not in perk_ids:
            hint = did_you_mean(rule.perk, perk_ids)
            add(
                "error", "unknown-perk", f"unknown perk {rule.perk!r}{hint}", rule=rid, field="perk"
            )
        _check_alternatives(rule, {p.id: p for p in table.perks}, add)
        if rule.fallback and rule.when:
            add(
                "error",
                "fallback-conditions",
                "a fallback rule has no conditions",
                rule=rid,
                field="when",
            )
        if rule.fallback and rid != fallbacks[0]:
            add(
                "error",
                "second-fallback",
                f"rule {fallbacks[0]} is already the fallback",
                rule=rid,
                field="fallback",
            )
        for column, cond in rule.when.items():
            field = f"when.{column}"
            if column in PROTECTED_COLUMNS:
                add(
                    "error",
                    "protected",
                    f"{column} is a protected attribute",
                    rule=rid,
                    field=field,
                )
            elif column not in known:
                hint = did_you_mean(column, known)
                add(
                    "error",
                    "unknown-column",
                    f"unknown column {column!r}{hint}",
                    rule=rid,
                    field=field,
                )
            if empty(cond):
                add(
                    "error",
                    "never-matches",
                    "this condition matches no value",
                    rule=rid,
                    field=field,
                )
        segments = _values(rule.when["segment"]) if "segment" in rule.when else None
        if segment_names is not None and segments is not None:
            for unknown in sorted(segments - set(segment_names)):
                add(
                    "error",
                    "unknown-segment",
                    f"unknown segment {unknown!r}{did_you_mean(unknown, segment_names)}",
                    rule=rid,
                    field="when.segment",
                )

    order = ordered_rules(table)
    for i, later in enumerate(order):
        for earlier in order[:i]:
            if earlier.id != later.id and shadows(earlier, later):
                hint = (
                    f"; to let the engine choose between {earlier.perk} and {later.perk}, "
                    f"list {later.perk} in the alternatives of rule {earlier.id}"
                    if shadows(later, earlier) and later.perk != earlier.perk
                    else ""
                )
                add(
                    "error",
                    "shadowed",
                    f"never fires: rule {earlier.id} comes first and holds wherever this does"
                    + hint,
                    rule=later.id,
                    field="when",
                )
                break
    out += persona_findings(table, known, segment_names, traits)
    resolved = resolve(table, personas_of(table, traits)) if traits is not None else table
    out += _coverage(resolved, segment_names, max_step)
    return out


#: Alternatives worth more than this share above or below the rule's perk are flagged: the
#: engine would change what a customer is worth, not only what they get.
VALUE_BAND = 0.25


def _check_alternatives(rule: Rule, perks: dict[str, Perk], add: Callable[..., None]) -> None:
    """Alternatives name known perks, each once and never the rule's own perk; one
    worth much more or less than the rule's perk is a warning."""
    seen: set[str] = set()
    for alternative in rule.alternatives:
        where = {"rule": rule.id, "field": "alternatives"}
        if alternative == rule.perk:
            add("error", "alternative-is-perk", f"{alternative} is the rule's own perk", **where)
        elif alternative in seen:
            add("error", "duplicate-alternative", f"{alternative} is listed twice", **where)
        elif alternative not in perks:
            hint = did_you_mean(alternative, perks)
            add("error", "unknown-perk", f"unknown perk {alternative!r}{hint}", **where)
        elif rule.perk in perks:
            own, other = perks[rule.perk].value, perks[alternative].value
            if abs(other - own) > VALUE_BAND * own:
                add(
                    "warning",
                    "alternative-value",
                    f"{alternative} is worth {other:g}, the rule's perk {rule.perk} "
                    f"{own:g}: customers would get more or less depending on what the "
                    "engine learns",
                    **where,
                )
        seen.add(alternative)


def _coverage(table: OfferTable, segment_names: Set[str] | None, max_step: int) -> list[Finding]:
    """(warning) segment x step pairs no rule answers whatever the customer's other columns."""
    named = (
        set(segment_names)
        if segment_names is not None
        else {v for r in table.rules for v in (_values(r.when.get("segment", [])) or set())}
    )
    segments: list[str | None] = [*sorted(named)] if named else [None]
    plain = [r for r in table.rules if set(r.when) <= {"segment", "step"}]
    out = []
    for segment in segments:
        missing = [
            step
            for step in range(1, max_step + 1)
            if not any(
                (segment is None or _admits(r.when.get("segment"), segment))
                and _admits(r.when.get("step"), step)
                for r in plain
            )
        ]
        if missing:
            who = f"segment {segment}" if segment is not None else "customers"
            steps = ", ".join(str(s) for s in missing)
            out.append(
                Finding(
                    severity="warning",
                    code="uncovered",
                    table=table.name,
                    field="when.segment" if segment is not None else "when.step",
                    message=f"{who} at step {steps}: no rule is sure to offer anything",
                )
            )
    return out
