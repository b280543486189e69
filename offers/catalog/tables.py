"""Offer tables: marketing's ordered rules, compiled into one polars expression each.

A table is data (TOML is its canonical form, `dump_table` writes it back); how its rules
match customers is in offers.catalog.matching.

What each field may hold (ids, titles, condition values, ranges) is in offers.catalog.fields;
how a decoding error names its rule and field, in offers.catalog.error_locations.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import polars as pl

from offers.catalog.cases import Case, dump_cases
from offers.catalog.error_locations import locate
from offers.catalog.fields import Airport, Column, Condition, Id, Language, Range, Text, Title
from offers.catalog.personas import Persona
from offers.catalog.toml_writing import toml_str, toml_value
from offers.incidents import FLIGHT_KINDS, IncidentKind
from segmentation.profiles import PROTECTED_COLUMNS

__all__ = [
    "DEFAULTS",
    "OfferTable",
    "Perk",
    "PerkKind",
    "Rule",
    "Stock",
    "TableError",
    "canonical",
    "check_table",
    "decode_table",
    "dump_table",
    "load_default_table",
    "parse_table",
    "perk_frame",
    "perk_titles",
    "table_from_builtins",
]

DEFAULTS = Path(__file__).parent / "defaults"

PerkKind = Literal[
    "voucher", "discount_percent", "lounge_pass", "miles", "meal", "upgrade", "credit"
]


class Stock(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How many of a perk one airport may hand out per day (the engine enforces it)."""

    airport: Airport
    per_day: Annotated[int, msgspec.Meta(ge=0)]


class Perk(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Something of value a customer can be given; `value` is its face value to them,
    `cost` what one costs the company, `usable_now` whether it works at the airport today."""

    id: Id
    kind: PerkKind
    value: Annotated[float, msgspec.Meta(ge=0)]
    cost: Annotated[float, msgspec.Meta(ge=0)]
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}(?!\n)$")] = "EUR"
    validity_days: Annotated[int, msgspec.Meta(ge=0)] = 30
    usable_now: bool = False
    title: dict[Language, Title]
    stock: list[Stock] = []


class Rule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When every condition in `when` holds, offer `perk`, or one of its `alternatives`.

    Keys of `when` are columns of the incident frame: `segment`, profile columns such as
    `tier` or `business_share`, and incident facts such as `step` or `delay_minutes`.
    `alternatives` are other perks marketing finds as fitting for the customers this rule
    matches: the engine learns from feedback which of `perk` and its alternatives each
    segment accepts (offers.decide.choice). `per_customer_limit` caps how often one
    customer gets this rule's perks. A `fallback` rule has no conditions and is evaluated
    after every other rule.
    """

    id: Id
    perk: Id
    alternatives: list[Id] = []
    priority: int = 0
    per_customer_limit: Annotated[int, msgspec.Meta(ge=1)] | None = None
    fallback: bool = False
    when: dict[Column, Condition] = {}
    description: Text = ""


class OfferTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Perks, personas and rules for the incident kinds in `incidents` (each kind is served
    by the newest published table that lists it)."""

    name: Id
    hit_policy: Literal["first", "priority"] = "first"
    incidents: Annotated[list[IncidentKind], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: list(FLIGHT_KINDS)  # type: ignore[arg-type]
    )
    personas: list[Persona] = []
    perks: list[Perk] = []
    rules: list[Rule] = []
    cases: list[Case] = []  # examples validate and publish run (offers.cases)

    def perk(self, perk_id: str) -> Perk:
        return next(p for p in self.perks if p.id == perk_id)


class TableError(ValueError):
    """A table that cannot be used; the message names the rule and field."""


def canonical(table: OfferTable) -> OfferTable:
    """The same table with every single-value condition as a one-item list."""
    rules = [
        msgspec.structs.replace(
            r, when={c: [v] if isinstance(v, str) else v for c, v in r.when.items()}
        )
        for r in table.rules
    ]
    personas = [
        msgspec.structs.replace(
            p, traits={c: [v] if isinstance(v, str) else v for c, v in p.traits.items()}
        )
        for p in table.personas
    ]
    return msgspec.structs.replace(table, rules=rules, personas=personas)


def _no_weights(raw: Any, source: str) -> None:
    """Refuse the `weight` rules once had: it was never read, and saying so beats a
    generic "unknown field" (alternatives are how a rule offers a choice now)."""
    rules = raw.get("rules") if isinstance(raw, dict) else None
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if isinstance(rule, dict) and "weight" in rule:
            label = rule.get("id") if isinstance(rule.get("id"), str) else f"rules[{index}]"
            raise TableError(
                f"{source}: rule {label}, field weight: rules have no weight; to let the "
                "engine choose among perks, list them in alternatives"
            )


def table_from_builtins(raw: Any, source: str = "offer table") -> OfferTable:
    """Convert parsed TOML/JSON into a canonical table; structure only, no cross-checks."""
    _no_weights(raw, source)
    try:
        table = msgspec.convert(raw, OfferTable)
    except msgspec.ValidationError as exc:
        raise TableError(locate(exc, raw, source)) from exc
    for rule in table.rules:
        for column, cond in rule.when.items():
            if isinstance(cond, Range) and cond.min is None and cond.max is None:
                raise TableError(
                    f"{source}: rule {rule.id}, field when.{column}: a range needs min or max"
                )
    return canonical(table)


def decode_table(text: str, source: str = "offer table") -> OfferTable:
    """Read TOML into a table, refusing only what cannot be represented (see validate)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TableError(f"{source}: not valid TOML: {exc}") from exc
    except RecursionError as exc:  # arrays or inline tables nested thousands deep
        raise TableError(f"{source}: not valid TOML: nested too deeply") from exc
    return table_from_builtins(raw, source)


def parse_table(text: str, source: str = "offer table") -> OfferTable:
    """Read TOML and refuse a table that would break matching (see check_table)."""
    table = decode_table(text, source)
    check_table(table)
    return table


def load_default_table() -> OfferTable:
    path = DEFAULTS / "offers.toml"
    return parse_table(path.read_text(encoding="utf-8"), str(path.name))


def check_table(table: OfferTable) -> None:
    """Refuse what would break matching: unknown perks, duplicate ids, protected columns."""
    perk_ids = {p.id for p in table.perks}
    if len(perk_ids) != len(table.perks):
        raise TableError(f"table {table.name}: duplicate perk id")
    persona_ids = {p.id for p in table.personas}
    if len(persona_ids) != len(table.personas):
        raise TableError(f"table {table.name}: duplicate persona id")
    for persona in table.personas:
        for column in persona.traits:
            if column in PROTECTED_COLUMNS:
                raise TableError(
                    f"table {table.name}, persona {persona.id}, field traits.{column}: "
                    "protected attribute"
                )
    seen: set[str] = set()
    for rule in table.rules:
        where = f"table {table.name}, rule {rule.id}"
        if rule.id in seen:
            raise TableError(f"{where}: duplicate rule id")
        seen.add(rule.id)
        if rule.perk not in perk_ids:
            raise TableError(f"{where}, field perk: unknown perk {rule.perk!r}")
        for alternative in rule.alternatives:
            if alternative not in perk_ids:
                raise TableError(f"{where}, field alternatives: unknown perk {alternative!r}")
        for column in rule.when:
            if column in PROTECTED_COLUMNS:
                raise TableError(f"{where}, field when.{column}: protected attribute")
        for named in _values(rule.when.get("persona")):
            if named not in persona_ids:
                raise TableError(f"{where}, field when.persona: unknown persona {named!r}")


def _values(cond: Condition | None) -> list[str]:
    if isinstance(cond, str):
        return [cond]
    return list(cond) if isinstance(cond, list) else []


def dump_table(table: OfferTable) -> str:
    """The table as TOML: one `[[perks]]`/`[[rules]]` block each, defaults left out."""
    lines = [
        f"name = {toml_str(table.name)}",
        f"hit_policy = {toml_str(table.hit_policy)}",
        f"incidents = {toml_value(table.incidents)}",
    ]
    for persona in table.personas:
        lines += ["", "[[personas]]", f"id = {toml_str(persona.id)}"]
        for field in ("description", "traits", "segments"):
            if value := getattr(persona, field):
                lines.append(f"{field} = {toml_value(value)}")
    for perk in table.perks:
        lines += ["", "[[perks]]"]
        for field in Perk.__struct_fields__:
            value = getattr(perk, field)
            if field != "stock" or value:
                lines.append(f"{field} = {toml_value(value)}")
    defaults = Rule(id="x", perk="x")
    order = ("id", "description", "when", "perk", "alternatives", "priority")
    for rule in table.rules:
        lines += ["", "[[rules]]"]
        for field in (*order, *(f for f in Rule.__struct_fields__ if f not in order)):
            value = getattr(rule, field)
            if field in ("id", "perk") or value != getattr(defaults, field):
                lines.append(f"{field} = {toml_value(value)}")
    lines += dump_cases(table.cases)
    return "\n".join(lines) + "\n"


#: The catalog's columns, typed also when a table has no perks (a draft may have none).
PERK_COLUMNS = {
    "perk_id": pl.String,
    "perk_kind": pl.String,
    "perk_value": pl.Float64,
    "perk_cost": pl.Float64,
    "currency": pl.String,
    "validity_days": pl.Int32,
    "usable_now": pl.Boolean,
}


def perk_frame(table: OfferTable) -> pl.DataFrame:
    """The catalog as a frame, to join perk facts onto decisions."""
    return pl.DataFrame(
        {
            "perk_id": [p.id for p in table.perks],
            "perk_kind": [p.kind for p in table.perks],
            "perk_value": [p.value for p in table.perks],
            "perk_cost": [p.cost for p in table.perks],
            "currency": [p.currency for p in table.perks],
            "validity_days": [p.validity_days for p in table.perks],
            "usable_now": [p.usable_now for p in table.perks],
        },
        schema=PERK_COLUMNS,
    )


def perk_titles(table: OfferTable) -> pl.DataFrame:
    """(perk_id, language, perk_title) for every title the catalog has."""
    rows = [(p.id, lang, title) for p in table.perks for lang, title in p.title.items()]
    return pl.DataFrame(rows, schema=["perk_id", "language", "perk_title"], orient="row")
