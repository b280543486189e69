"""Run a table's example cases through the real engine: the rule that matched, the perk, why.

Each case is one customer (an ordinary profile with the case's segment and profile facts)
at the step its incident's delay reaches, with nothing sent before and no other incidents:
the engine's own stages decide it, with the law computed from the facts. A case fails when
the rule or perk differs from what it expects; the answer says what matched and why.
Nothing is read from or written to the ledger.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import polars as pl

from offers.catalog import Finding, OfferTable, personas_of, resolve
from offers.catalog.cases import NO_PERK, Case
from offers.decide import StepContext, decide
from offers.incidents import EscalationPolicy, Incident, entitlements, facts_type
from offers.messages import MessageBook
from offers.record import HISTORY_SCHEMA, RECENT_SCHEMA
from segmentation.profiles import CHANNELS, PROFILE_SCHEMA
from segmentation.traits import SegmentTraits, segment_traits

__all__ = ["CaseResult", "case_findings", "run_cases"]

#: An ordinary customer: what a case's profile does not say.
_ORDINARY: dict[str, Any] = {
    "first_name": "Mei",
    "email": None,
    "phone": None,
    "language": "en",
    "preferred_channel": "sms",
    "allowed_channels": list(CHANNELS),
    "consent_marketing": True,
    "timezone": "UTC",
    "home_airport": None,
    "tier": "basic",
    "trips_12m": 0,
    "spend_12m": 0.0,
    "business_share": 0.0,
    "avg_fare": 0.0,
    "duty_free_spend_12m": 0.0,
    "lounge_visits_12m": 0,
    "tenure_years": 0.0,
    "complaints_12m": 0,
    "gender": None,
    "birth_year": None,
}
#: What an incident's facts default to where a case leaves them out.
_FACTS: dict[str, Any] = {"delay_minutes": 90}
_SUBJECT = {"flight": "MG123", "reference": "CASE-1"}
_WHEN = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


class CaseResult(msgspec.Struct, frozen=True, kw_only=True):
    """One case as the engine decided it, and whether that is what it expects."""

    id: str
    ok: bool
    step: int
    rule: str | None
    perk: str | None
    expected_rule: str | None
    expected_perk: str | None
    reasons: list[str]
    problem: str = ""  # why it differs, or why it could not run


def _customer(case: Case) -> pl.DataFrame:
    unknown = [k for k in case.profile if k not in PROFILE_SCHEMA and not k.isidentifier()]
    if unknown:
        raise ValueError(f"profile: {unknown[0]!r} is not a column name")
    row = _ORDINARY | case.profile | {"customer_id": f"case:{case.id}"}
    columns = []
    for name, dtype in PROFILE_SCHEMA.items():
        try:
            columns.append(pl.Series(name, [row.get(name)], dtype=dtype, strict=True))
        except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
            raise ValueError(f"profile.{name}: {row.get(name)!r} does not fit ({dtype})") from exc
    frame = pl.DataFrame(columns)
    extra = {k: v for k, v in case.profile.items() if k not in PROFILE_SCHEMA}
    return frame.with_columns(
        *(pl.lit(v).alias(k) for k, v in extra.items()),
        segment=pl.lit(case.segment),
        segment_description=pl.lit(""),
    )


def _personas(
    case: Case, table: OfferTable, customer: pl.DataFrame, served: SegmentTraits | None
) -> dict[str, str | None]:
    """The persona the case's segment is: as the case says, as served, or as its profile fits."""
    if case.persona is not None:
        return {case.segment: case.persona}
    if served is not None and case.segment in served:
        return personas_of(table, {case.segment: served[case.segment]})
    return personas_of(table, segment_traits(customer))


def _one(
    case: Case, table: OfferTable, book: MessageBook, served: SegmentTraits | None
) -> CaseResult:
    expected_rule, expected_perk = case.expect.rule, case.expect.perk

    def result(step: int, problem: str, row: dict[str, Any] | None = None) -> CaseResult:
        reasons = [str(r) for r in json.loads(row["reasons"] or "[]")] if row else []
        return CaseResult(
            id=case.id,
            ok=not problem,
            step=step,
            rule=row["rule_id"] if row else None,
            perk=row["perk_id"] if row else None,
            expected_rule=expected_rule,
            expected_perk=expected_perk,
            reasons=reasons,
            problem=problem,
        )

    try:
        kind = facts_type(case.kind)
        subject = {k: v for k, v in _SUBJECT.items() if k in kind.__struct_fields__}
        facts = msgspec.convert(_FACTS | subject | case.facts, kind, strict=False)
        incident = Incident(
            incident_id=f"case-{case.id}", kind=case.kind, occurred_at=_WHEN, facts=facts
        )
        customers = _customer(case)
        personas = _personas(case, table, customers, served)
    except (msgspec.ValidationError, ValueError, TypeError, pl.exceptions.PolarsError) as exc:
        return result(0, f"case {case.id} cannot run: {exc}")
    step = EscalationPolicy.for_kind(case.kind).step(incident.facts.delay_minutes)
    if step == 0:
        ok = expected_rule is None and expected_perk in (None, NO_PERK)
        return result(0, "" if ok else "the delay is below notice: nothing is sent")
    owed, note = entitlements(incident)
    ctx = StepContext(
        incident=incident, step=step, now=_WHEN, entitlements=owed, entitlement_note=note
    )
    empty_history = pl.DataFrame(schema=HISTORY_SCHEMA)
    empty_recent = pl.DataFrame(schema=RECENT_SCHEMA)
    resolved = resolve(table, personas)
    row = decide(customers, empty_history, empty_recent, ctx, resolved, book).row(0, named=True)
    rule, perk = row["rule_id"], row["perk_id"]
    wrong = []
    if expected_rule is not None and rule != expected_rule:
        wrong.append(f"expected rule {expected_rule}, rule {rule or 'none'} matched")
    if expected_perk is not None and (perk or NO_PERK) != expected_perk:
        wrong.append(f"expected perk {expected_perk}, got {perk or 'no perk'}")
    why = [r for r in json.loads(row["reasons"] or "[]") if "rule" in r or r.startswith("step ")]
    problem = "; ".join(wrong) + (f" (why: {'; '.join(why)})" if wrong and why else "")
    return result(step, problem, row)


def run_cases(
    table: OfferTable, book: MessageBook, traits: SegmentTraits | None = None
) -> list[CaseResult]:
    """Every example case of `table`, decided by the engine, in the table's order; rules on
    personas reach the segments that are those personas in `traits` (the served ones)."""
    return [_one(case, table, book, traits) for case in table.cases]


def case_findings(
    table: OfferTable, book: MessageBook, traits: SegmentTraits | None = None
) -> list[Finding]:
    """The failing cases as findings (code `case-failed`), located by the case."""
    return [
        Finding(
            severity="error",
            code="case-failed",
            table=table.name,
            rule=result.rule,
            field=f"cases.{result.id}",
            message=f"case {result.id}: {result.problem}",
        )
        for result in run_cases(table, book, traits)
        if not result.ok
    ]
