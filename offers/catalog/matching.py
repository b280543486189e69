"""Matching: an offer table's rules as polars expressions over the incident frame.

Matching never loops over customers: every rule becomes a boolean expression, and the
first rule that holds (after ordering by priority under the `priority` hit policy, with
fallback rules always last) picks the perk. The combinations of the columns rules read
are few, so each is matched once (`per_situation`), and a small incident's combinations
are remembered per table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from offers.catalog.fields import Condition, Range
from offers.catalog.tables import OfferTable, Rule, TableError
from offers.memo import per_object
from offers.situations import per_situation
from segmentation.profiles import UNSEGMENTED

__all__ = ["candidates", "match", "ordered_rules", "rule_expr"]


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
