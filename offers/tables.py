"""Offer tables: marketing's ordered rules, compiled into one polars expression each.

A table is data (TOML is its canonical form). Matching never loops over customers: every
rule becomes a boolean expression over the incident frame, and the first rule that holds
(after ordering by priority under the `priority` hit policy) picks the perk.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import polars as pl

from segmentation.profiles import PROTECTED_COLUMNS

DEFAULTS = Path(__file__).parent / "defaults"

PerkKind = Literal[
    "voucher", "discount_percent", "lounge_pass", "miles", "meal", "upgrade", "credit"
]
Id = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class Perk(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Something of value a customer can be given; `value` is what it is worth to them."""

    id: Id
    kind: PerkKind
    value: Annotated[float, msgspec.Meta(ge=0)]
    cost: Annotated[float, msgspec.Meta(ge=0)]
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "EUR"
    validity_days: Annotated[int, msgspec.Meta(ge=0)] = 30
    usable_now: bool = False
    title: dict[str, str]


class Range(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Inclusive numeric bounds; either side may be open."""

    min: float | None = None
    max: float | None = None


Condition = str | bool | list[str] | Range


class Rule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When every condition in `when` holds, offer `perk`.

    Keys of `when` are columns of the incident frame: `segment`, profile columns such as
    `tier` or `business_share`, and incident facts such as `step` or `delay_minutes`.
    """

    id: Id
    perk: Id
    priority: int = 0
    when: dict[str, Condition] = {}
    description: str = ""


class OfferTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Id
    hit_policy: Literal["first", "priority"] = "first"
    perks: list[Perk]
    rules: list[Rule]

    def perk(self, perk_id: str) -> Perk:
        return next(p for p in self.perks if p.id == perk_id)


class TableError(ValueError):
    """A table that cannot be used; the message names the rule and field."""


def parse_table(text: str, source: str = "offer table") -> OfferTable:
    try:
        raw = tomllib.loads(text)
        table = msgspec.convert(raw, OfferTable)
    except tomllib.TOMLDecodeError as exc:
        raise TableError(f"{source}: not valid TOML: {exc}") from exc
    except msgspec.ValidationError as exc:
        raise TableError(f"{source}: {exc}") from exc
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
    seen: set[str] = set()
    for rule in table.rules:
        where = f"table {table.name}, rule {rule.id}"
        if rule.id in seen:
            raise TableError(f"{where}: duplicate rule id")
        seen.add(rule.id)
        if rule.perk not in perk_ids:
            raise TableError(f"{where}, field perk: unknown perk {rule.perk!r}")
        for column in rule.when:
            if column in PROTECTED_COLUMNS:
                raise TableError(f"{where}, field when.{column}: protected attribute")


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


def ordered_rules(table: OfferTable) -> list[Rule]:
    """Rules in evaluation order: as written, or by priority (stable) for `priority`."""
    if table.hit_policy == "priority":
        return sorted(table.rules, key=lambda r: -r.priority)
    return list(table.rules)


def match(frame: pl.DataFrame, table: OfferTable) -> pl.DataFrame:
    """Add `rule_id` and `perk_id`: the first rule that holds for each row, else null."""
    rules = ordered_rules(table)
    missing = {c for r in rules for c in r.when} - set(frame.columns)
    if missing:
        raise TableError(f"table {table.name}: conditions on unknown columns {sorted(missing)}")
    if not rules:
        return frame.with_columns(rule_id=pl.lit(None, pl.String), perk_id=pl.lit(None, pl.String))
    # Index of the first matching rule, as one pass: when/then chains stop at the first hit.
    chain: Any = pl.when(rule_expr(rules[0])).then(pl.lit(0, pl.Int32))
    for i, rule in enumerate(rules[1:], start=1):
        chain = chain.when(rule_expr(rule)).then(pl.lit(i, pl.Int32))
    first: pl.Expr = chain.otherwise(pl.lit(None, pl.Int32))
    rule_ids = pl.Series([r.id for r in rules], dtype=pl.String)
    perk_ids = pl.Series([r.perk for r in rules], dtype=pl.String)
    return (
        frame.with_columns(_hit=first)
        .with_columns(
            rule_id=pl.col("_hit").replace_strict(
                list(range(len(rules))), rule_ids, default=None, return_dtype=pl.String
            ),
            perk_id=pl.col("_hit").replace_strict(
                list(range(len(rules))), perk_ids, default=None, return_dtype=pl.String
            ),
        )
        .drop("_hit")
    )


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
        schema_overrides={"validity_days": pl.Int32},
    )


def perk_titles(table: OfferTable) -> pl.DataFrame:
    """(perk_id, language, perk_title) for every title the catalog has."""
    rows = [(p.id, lang, title) for p in table.perks for lang, title in p.title.items()]
    return pl.DataFrame(rows, schema=["perk_id", "language", "perk_title"], orient="row")
