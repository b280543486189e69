"""Offer tables: marketing's ordered rules, compiled into one polars expression each.

A table is data (TOML is its canonical form, `dump_table` writes it back). Matching never
loops over customers: every rule becomes a boolean expression over the incident frame, and
the first rule that holds (after ordering by priority under the `priority` hit policy, with
fallback rules always last) picks the perk.

What each field may hold (ids, titles, condition values, ranges) is in offers.catalog.fields;
how a decoding error names its rule and field, in offers.catalog.error_locations.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
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
from offers.memo import per_object
from offers.situations import per_situation
from segmentation.profiles import PROTECTED_COLUMNS, UNSEGMENTED

__all__ = [
    "DEFAULTS",
    "OfferTable",
    "Perk",
    "PerkKind",
    "Rule",
    "Stock",
    "TableError",
    "candidates",
    "canonical",
    "check_table",
    "decode_table",
    "dump_table",
    "load_default_table",
    "match",
    "ordered_rules",
    "parse_table",
    "perk_frame",
    "perk_titles",
    "rule_expr",
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


# --- matching ------------------------------------------------------------------------


def _condition(column: str, cond: Condition) -> pl.Expr:
    col = pl.col(column)
    if isinstance(cond, Range):
        expr = pl.lit(True)
        if cond.min is not None:
            expr = expr & (col >= cond.min)
        if cond.max is not None:
            expr = expr & (col <= cond.max)
        return expr
    if isinstance(cond, bool):
        return col == cond
    values = [cond] if isinstance(cond, str) else cond
    return col.cast(pl.String).is_in(values)


def rule_expr(rule: Rule) -> pl.Expr:
    expr = pl.lit(True)
    for column, cond in rule.when.items():
        expr = expr & _condition(column, cond)
    return expr.fill_null(False)


def candidates(rule: Rule) -> list[str]:
    """The rule's perk, then its alternatives, each once: what the engine chooses among."""
    return list(dict.fromkeys([rule.perk, *rule.alternatives]))


def ordered_rules(table: OfferTable) -> list[Rule]:
    """Rules in evaluation order: as written, or by priority (stable) for `priority`;
    fallback rules always come last."""
    rules = list(table.rules)
    if table.hit_policy == "priority":
        rules = sorted(rules, key=lambda r: -r.priority)
    return [r for r in rules if not r.fallback] + [r for r in rules if r.fallback]


def match(frame: pl.DataFrame, table: OfferTable) -> pl.DataFrame:
    """Add `rule_id` and `perk_id`: the first rule that holds for each row, else null."""
    rules, columns, first_hit = _matcher(table)
    missing = columns - set(frame.columns)
    if missing:
        raise TableError(f"table {table.name}: conditions on unknown columns {sorted(missing)}")
    if not rules:
        return frame.with_columns(rule_id=pl.lit(None, pl.String), perk_id=pl.lit(None, pl.String))
    # Rule conditions read a few columns with few values: match each combination once.
    keys = sorted(columns | ({"segment"} & set(frame.columns)))
    hit = first_hit("segment" in frame.columns)
    return per_situation(frame, keys, hit).drop("_hit", strict=False)


def _compile_matcher(
    table: OfferTable,
) -> tuple[list[Rule], set[str], Callable[[bool], Callable[[pl.DataFrame], pl.DataFrame]]]:
    """The table's rules in order, the columns they read, and the first-hit stage (with or
    without a `segment` column): built once per table, not once per call."""
    rules = ordered_rules(table)
    columns = {c for r in rules for c in r.when}
    stages = {segmented: _first_hit(rules, segmented) for segmented in (False, True)}
    return rules, columns, stages.__getitem__


_matcher = per_object(_compile_matcher)


#: A call with at most this many situations looks them up in the table's memo of
#: situations already matched; more (a rule on a continuous column) are matched in polars.
_MEMO_SITUATIONS = 256
#: Situations remembered per table before the memo starts over.
_MEMO_SIZE = 4096


def _first_hit(rules: list[Rule], segmented: bool) -> Callable[[pl.DataFrame], pl.DataFrame]:
    if not rules:
        return lambda situations: situations
    # Customers who objected to profiling get the fallback (base) rule only.
    profiled = pl.col("segment").fill_null("") != UNSEGMENTED if segmented else pl.lit(True)

    def holds(rule: Rule) -> pl.Expr:
        return rule_expr(rule) if rule.fallback else rule_expr(rule) & profiled

    # Index of the first matching rule, as one pass: when/then chains stop at the first hit.
    chain: Any = pl.when(holds(rules[0])).then(pl.lit(0, pl.Int32))
    for i, rule in enumerate(rules[1:], start=1):
        chain = chain.when(holds(rule)).then(pl.lit(i, pl.Int32))
    first: pl.Expr = chain.otherwise(pl.lit(None, pl.Int32))
    hits = list(range(len(rules)))
    rule_ids = [r.id for r in rules]
    perk_ids = [r.perk for r in rules]
    named = (
        pl.col("_hit").replace_strict(hits, rule_ids, default=None).alias("rule_id"),
        pl.col("_hit").replace_strict(hits, perk_ids, default=None).alias("perk_id"),
    )
    # Polars plans that chain anew on every call (about 0.1 ms a rule, however few the
    # rows), so the situations of small incidents are remembered once matched.
    memo: dict[tuple[Any, ...], int | None] = {}

    def first_hit(situations: pl.DataFrame) -> pl.DataFrame:
        if situations.height > _MEMO_SITUATIONS:
            return situations.with_columns(_hit=first).with_columns(*named)
        keys = situations.drop("_situation")
        # repr and dtypes keep apart what Python finds equal (1, 1.0, True; 0.0, -0.0)
        dtypes = tuple(keys.schema.items())
        values = [(dtypes, *map(repr, row)) for row in keys.iter_rows()]
        new = [i for i, v in enumerate(values) if v not in memo]
        if len(memo) + len(new) > _MEMO_SIZE:
            memo.clear()
            new = list(range(len(values)))
        if new:
            found = situations[new].select(first).to_series().to_list()
            memo.update((values[i], hit) for i, hit in zip(new, found, strict=True))
        rows = [memo[v] for v in values]
        return situations.hstack(  # new columns: stacking plans nothing
            [
                pl.Series("rule_id", [None if h is None else rule_ids[h] for h in rows], pl.String),
                pl.Series("perk_id", [None if h is None else perk_ids[h] for h in rows], pl.String),
            ]
        )

    return first_hit


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
