"""The candidate perk and what limits it: the step's value band, perks already held from
this incident, a rule's per-customer limit, the airport's stock of the day; and, for the
perk given, its title, code and validity.

Everything is a join or a column expression over the whole incident; what is per perk
(titles, limits) is built per perk, never per customer.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import msgspec
import polars as pl

from offers.catalog import OfferTable
from offers.decide.context import StepContext
from offers.decide.literal import constant
from offers.memo import per_object
from offers.messages import LANGUAGE_FALLBACK
from offers.record import perk_codes
from offers.situations import per_situation

__all__ = [
    "HeldPerks",
    "held_perks",
    "in_stock",
    "with_candidate_perks",
    "with_perk_facts",
    "with_rule_limits",
    "within_band",
]


class HeldPerks(NamedTuple):
    """Perks held from this incident: `ids` lists them per customer (`held`), `best` is
    the most valuable held of each kind (`held_id`, `held_value`, `held_cost`)."""

    ids: pl.DataFrame
    best: pl.DataFrame


def held_perks(history: pl.DataFrame, perks: pl.DataFrame) -> HeldPerks:
    """Per customer: the perks held from this incident, and the best held of each kind."""
    held = history.drop_nulls("perk_id").join(perks, on="perk_id", how="left")
    ids = held.group_by("customer_id").agg(held=pl.col("perk_id"))
    best = (
        held.sort("perk_value", descending=True)
        .group_by("customer_id", "perk_kind")
        .agg(
            held_id=pl.col("perk_id").first(),
            held_value=pl.col("perk_value").first(),
            held_cost=pl.col("perk_cost").first(),
        )
    )
    return HeldPerks(ids, best)


def within_band(table: OfferTable, ctx: StepContext) -> OfferTable:
    """The table without rules whose perk is worth more or less than the step's band,
    and without alternatives outside it: the same object for the same table and band, so
    what is prepared once per table (matching, candidates) is prepared once per band too."""
    band = ctx.value.band(ctx.step)
    if band is None:
        return table
    return _banded(table, band.min_value, band.max_value)


@per_object
def _banded(table: OfferTable, low: float, high: float) -> OfferTable:
    values = {p.id: p.value for p in table.perks}

    def inside(perk: str) -> bool:
        return low <= values[perk] <= high

    rules = [
        msgspec.structs.replace(r, alternatives=[a for a in r.alternatives if inside(a)])
        for r in table.rules
        if inside(r.perk)
    ]
    return msgspec.structs.replace(table, rules=rules)


#: The best held perk's columns, null where none is held.
_HELD = (("held_id", pl.String()), ("held_value", pl.Float64()), ("held_cost", pl.Float64()))


@per_object
def _candidate_facts(perks: pl.DataFrame) -> pl.DataFrame:
    """The catalog's facts keyed by `candidate`, once per catalog frame."""
    return perks.select(
        candidate="perk_id",
        perk_kind="perk_kind",
        perk_value="perk_value",
        perk_cost="perk_cost",
        currency="currency",
        validity_days="validity_days",
    )


def with_candidate_perks(
    frame: pl.DataFrame, perks: pl.DataFrame, held: HeldPerks | None
) -> pl.DataFrame:
    """The catalog's facts of the `candidate` perk, and the best perk of the same kind the
    customer already holds from this incident (`held_*`, null where none)."""
    facts = frame.select("candidate").join(  # the key alone: the frame is not copied
        _candidate_facts(perks), on="candidate", how="left", maintain_order="left"
    )
    stacked = facts.get_columns()[1:]
    if held is None:
        stacked += [constant(name, None, dtype, frame.height) for name, dtype in _HELD]
        return frame.hstack(stacked)  # new columns: stacking plans nothing
    frame = frame.hstack(stacked)
    return frame.join(
        held.best.rename({"perk_kind": "_kind"}),
        left_on=["customer_id", "perk_kind"],
        right_on=["customer_id", "_kind"],
        how="left",
    )


def with_rule_limits(frame: pl.DataFrame, table: OfferTable, recent: pl.DataFrame) -> pl.DataFrame:
    """`_limit`: the matched rule's per-customer limit; `_uses`: how often the customer got
    that perk in other incidents inside the contact window (an incident counts once)."""
    limits = {r.id: r.per_customer_limit for r in table.rules if r.per_customer_limit}
    if not limits:
        n = frame.height
        return frame.hstack(
            [constant("_limit", None, pl.Int64(), n), constant("_uses", 0, pl.UInt32(), n)]
        )
    uses = (
        recent.drop_nulls("perk_id")
        .group_by("customer_id", "perk_id")
        .agg(_uses=pl.col("incident_id").n_unique())
        .rename({"perk_id": "candidate"})
    )
    return frame.join(uses, on=["customer_id", "candidate"], how="left").with_columns(
        _limit=pl.col("rule_id").replace_strict(
            list(limits), list(limits.values()), default=None, return_dtype=pl.Int64
        ),
        _uses=pl.col("_uses").fill_null(0),
    )


def in_stock(frame: pl.DataFrame, stock_left: dict[str, int]) -> pl.Series:
    """A boolean per row: the candidate perk is still in stock at this airport today.

    Stocked perks go to customers in customer-id order until the day's stock runs out,
    so the same request always gives the same answer.
    """
    if not stock_left:
        return pl.Series("in_stock", [True] * frame.height, dtype=pl.Boolean)
    limits = pl.DataFrame(
        {"candidate": list(stock_left), "_left": list(stock_left.values())},
        schema={"candidate": pl.String, "_left": pl.Int64},
    )
    ranked = (
        frame.select("customer_id", "candidate", "charged_cost")
        .with_row_index("_row")
        .join(limits, on="candidate", how="left")
        .with_columns(
            _rank=pl.col("customer_id")
            .rank("ordinal")
            .over(pl.col("candidate"), pl.col("charged_cost").is_not_null())
        )
        .sort("_row")
    )
    ok = (
        pl.col("_left").is_null()
        | pl.col("charged_cost").is_null()
        | (pl.col("_rank") <= pl.col("_left"))
    )
    return ranked.select(ok.alias("in_stock")).to_series()


@per_object
def _titles(table: OfferTable) -> dict[tuple[str, str], str | None]:
    """(perk id, language) -> title for every perk and language, fallbacks applied."""
    titles = {}
    for perk in table.perks:
        for language, chain in LANGUAGE_FALLBACK.items():
            title = next((perk.title[lang] for lang in chain if lang in perk.title), None)
            if title is None and perk.title:
                title = next(iter(perk.title.values()))
            titles[perk.id, language] = title
    return titles


def with_perk_facts(frame: pl.DataFrame, table: OfferTable, now: datetime) -> pl.DataFrame:
    """Title (customer's language, else English), code and validity of the given perk;
    the candidate's value, cost and currency are kept only where it is given."""
    given = pl.col("perk_id").is_not_null()
    titles = _titles(table)

    def title(situations: pl.DataFrame) -> pl.DataFrame:
        # a few situations: looked up in Python, where a join would plan a query
        found = [titles.get(k) for k in situations[["perk_id", "language"]].iter_rows()]
        return situations.hstack([pl.Series("perk_title", found, pl.String)])

    frame = per_situation(frame, ["perk_id", "language"], title)
    return frame.with_columns(
        perk_value=pl.when(given).then(pl.col("perk_value")),
        perk_cost=pl.when(given).then(pl.col("perk_cost")),
        currency=pl.when(given).then(pl.col("currency")),
        perk_code=pl.when(given).then(perk_codes(frame.height)),
        valid_until=pl.when(given).then(
            pl.lit(now.date()) + pl.duration(days=pl.col("validity_days"))
        ),
    )
