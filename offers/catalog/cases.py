"""Example cases that travel with an offer table: a customer, an incident, what should happen.

Marketing keeps a few known customers beside the rules (`[[cases]]` in the TOML) and the
outcome each should get; validate and publish run them through the real engine
(`offers.cases`) and show, per case, the rule that matched and why it differs.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from offers.catalog.fields import Id
from offers.catalog.toml_writing import toml_value

__all__ = ["NO_PERK", "Case", "Expect", "dump_cases"]

#: What `expect.perk` says when the customer should get no perk.
NO_PERK = "none"


class Expect(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The outcome a case should have: the rule that decides, the perk (`none`: no perk)."""

    rule: Id | None = None
    perk: Id | None = None


class Case(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One example customer: segment, profile facts that differ from an ordinary customer,
    the incident (kind and facts; its delay decides the step), and the expected outcome.

    Rules on personas reach the case as its segment is that persona where the table is
    served; a segment not served there is the persona its own profile fits, unless the case
    says which (`persona`)."""

    id: Id
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""
    segment: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    persona: Id | None = None
    kind: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] = "flight_delay"
    facts: dict[str, Any] = {}
    profile: dict[str, Any] = {}
    expect: Expect

    def __post_init__(self) -> None:
        for field in ("facts", "profile"):
            where = _null_at(getattr(self, field), field)
            if where is not None:  # TOML, where the table is kept, has no null
                raise ValueError(f"{where}: null cannot be kept in a table (leave it out)")


def _null_at(value: Any, path: str) -> str | None:
    """Where in `value` (a JSON value) a null is, if anywhere."""
    if value is None:
        return path
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, inner in items:
        found = _null_at(inner, f"{path}.{key}" if isinstance(value, dict) else f"{path}[{key}]")
        if found is not None:
            return found
    return None


def dump_cases(cases: list[Case]) -> list[str]:
    """TOML lines of the `[[cases]]` blocks, defaults left out, for `dump_table`."""
    lines: list[str] = []
    for case in cases:
        lines += ["", "[[cases]]", f"id = {toml_value(case.id)}"]
        if case.description:
            lines.append(f"description = {toml_value(case.description)}")
        lines.append(f"segment = {toml_value(case.segment)}")
        if case.persona is not None:
            lines.append(f"persona = {toml_value(case.persona)}")
        if case.kind != "flight_delay":
            lines.append(f"kind = {toml_value(case.kind)}")
        for field in ("facts", "profile"):
            if getattr(case, field):
                lines.append(f"{field} = {toml_value(getattr(case, field))}")
        expect = {k: v for k, v in msgspec.to_builtins(case.expect).items() if v is not None}
        lines.append(f"expect = {toml_value(expect)}")
    return lines
