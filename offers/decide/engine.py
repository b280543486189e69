"""The decision engine: one incident step for every affected customer, as columns.

Input is a frame of affected customers (profile columns plus `segment` and
`segment_description`), what each already received in this incident, and their other
incidents in the contact window. Output is one decision row per customer: message kind,
channel, language, text, perk (or why none), entitlements and reasons, and for the ledger
alone (`LEDGER_ONLY`) the `reason_id` under which it keeps each wording once, the text's
shell and the name spliced into it. Nothing here loops over customers; nothing here
writes anywhere. With `StepContext.learning`, the first hit may give way to an
interchangeable perk learned from feedback (`offers.learning.evidence`); every decision logs the
probability of its choice in `propensity`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import polars as pl

from offers.catalog.tables import OfferTable, match, perk_frame
from offers.decide.allocation import allocate
from offers.decide.choice import Learning, choose
from offers.decide.policy import ContactPolicy, ValuePolicy, holdout_mask, recent_counts
from offers.incidents.kinds import Incident
from offers.messages.book import LANGUAGE_FALLBACK, MessageBook
from offers.messages.rendering import render_texts
from offers.record import DECISION_COLUMNS, perk_codes, reason_id
from offers.situations import per_situation, situation_key


@dataclass(frozen=True)
class StepContext:
    """Everything about the step that is the same for every customer."""

    incident: Incident
    step: int
    now: datetime
    policy: ContactPolicy = field(default_factory=ContactPolicy)
    budget_left: float | None = None
    entitlements: list[dict[str, Any]] = field(default_factory=list)
    entitlement_note: str | None = None
    #: Posteriors and bounds for exploring interchangeable perks; None: the table decides.
    learning: Learning | None = None
    value: ValuePolicy = field(default_factory=ValuePolicy)
    #: perk id -> how many more may be given at the incident's airport today
    stock_left: dict[str, int] = field(default_factory=dict)


def _channel() -> pl.Expr:
    """Preferred channel when allowed, else the first allowed one, else none."""
    allowed = pl.col("allowed_channels")
    return (
        pl.when(allowed.list.contains(pl.col("preferred_channel")))
        .then(pl.col("preferred_channel").cast(pl.String))
        .otherwise(allowed.list.first().cast(pl.String))
    )


def _held(history: pl.DataFrame, perks: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
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
    return ids, best


#: Profile columns the engine itself reads; rule conditions may add more.
_ENGINE_COLUMNS = (
    "customer_id",
    "segment",
    "segment_description",
    "language",
    "preferred_channel",
    "allowed_channels",
    "first_name",
)

#: Why a candidate perk was not given, as a short code; words come from `_reason_text`.
_DROPS = ("already", "no_gain", "holdout", "cap", "budget")


def within_band(table: OfferTable, ctx: StepContext) -> OfferTable:
    """The table without rules whose perk is worth more or less than the step's band."""
    band = ctx.value.band(ctx.step)
    if band is None:
        return table
    values = {p.id: p.value for p in table.perks}
    rules = [r for r in table.rules if band.min_value <= values[r.perk] <= band.max_value]
    return msgspec.structs.replace(table, rules=rules)


def _with_rule_limits(frame: pl.DataFrame, table: OfferTable, recent: pl.DataFrame) -> pl.DataFrame:
    """`_limit`: the matched rule's per-customer limit; `_uses`: how often the customer got
    that perk in other incidents inside the contact window (an incident counts once)."""
    limits = {r.id: r.per_customer_limit for r in table.rules if r.per_customer_limit}
    if not limits:
        return frame.with_columns(_limit=pl.lit(None, pl.Int64), _uses=pl.lit(0, pl.UInt32))
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


def _stock(frame: pl.DataFrame, stock_left: dict[str, int]) -> pl.Series:
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


def _scalar_facts(incident: Incident) -> dict[str, Any]:
    facts = msgspec.structs.asdict(incident.facts)
    return {k: v for k, v in facts.items() if not isinstance(v, (dict, list))}


#: Columns every step adds to the facts (see `_fact_columns`).
_STEP_FACTS = ("incident_id", "kind", "step", "delay_minutes", "subject", "airport")


def _fact_columns(incident: Incident, step: int) -> dict[str, pl.Expr]:
    """Incident facts as literal columns, so rules can name them like profile columns."""
    facts = _scalar_facts(incident)
    columns = {k: pl.lit(v) for k, v in facts.items()}
    columns.update(
        incident_id=pl.lit(incident.incident_id),
        kind=pl.lit(incident.kind),
        step=pl.lit(step, pl.Int32),
        delay_minutes=pl.lit(incident.facts.delay_minutes, pl.Int32),
        # what the message is about: the flight, or the order, bag or service
        subject=pl.lit(facts.get("flight") or facts.get("reference")),
        airport=pl.lit(facts.get("origin")),
    )
    return columns


def profile_columns(table: OfferTable, available: Sequence[str], incident: Incident) -> list[str]:
    """The profile columns a decision reads: the engine's own and those the rules name
    (an incident fact of the same name wins over a profile column)."""
    rule_columns = sorted({c for r in table.rules for c in r.when})
    facts = {*_scalar_facts(incident), *_STEP_FACTS}  # the names `_fact_columns` gives
    return [
        c
        for c in dict.fromkeys([*_ENGINE_COLUMNS, *rule_columns])
        if c in available and c not in facts
    ]


def decide(
    customers: pl.DataFrame,
    history: pl.DataFrame,
    recent: pl.DataFrame,
    ctx: StepContext,
    table: OfferTable,
    book: MessageBook,
) -> pl.DataFrame:
    """Decisions for `ctx.step` for customers not yet decided at this step or a later one."""
    incident, step, policy = ctx.incident, ctx.step, ctx.policy
    perks = perk_frame(table)
    facts = _fact_columns(incident, step)
    wanted = profile_columns(table, customers.columns, incident)
    if "_id_hash" in customers.columns:
        wanted.append("_id_hash")
    frame = customers.select(wanted)
    if history.is_empty():
        frame = frame.with_columns(
            last_step=pl.lit(None, pl.Int32),
            held=pl.lit([], pl.List(pl.String)),
        )
    else:
        prior = history.group_by("customer_id").agg(last_step=pl.col("step").max())
        held_ids, held_best = _held(history, perks)
        frame = (
            frame.join(prior, on="customer_id", how="left")
            .filter(pl.col("last_step").is_null() | (pl.col("last_step") < step))
            .join(held_ids, on="customer_id", how="left")
            .with_columns(pl.col("held").fill_null([]))
        )
    if recent.is_empty():
        frame = frame.with_columns(
            other_incidents=pl.lit(0, pl.Int32), perk_incidents=pl.lit(0, pl.UInt32)
        )
    else:
        frame = frame.join(recent_counts(recent), on="customer_id", how="left").with_columns(
            pl.col("other_incidents").fill_null(0), pl.col("perk_incidents").fill_null(0)
        )
    frame = frame.with_columns(
        **facts,
        message_kind=pl.when(pl.col("last_step").is_null())
        .then(pl.lit("apology"))
        .otherwise(pl.lit("update")),
        channel=_channel(),
    )
    banded = within_band(table, ctx)
    frame = match(frame, banded).rename({"perk_id": "candidate"})
    if ctx.learning is None:
        frame = frame.with_columns(
            choice_p=pl.lit(1.0), _learn=pl.lit(None, pl.String), _set=pl.lit(None, pl.String)
        )
    else:  # may swap the first hit for an interchangeable perk; logs the choice's probability
        hashes = frame["_id_hash"] if "_id_hash" in frame.columns else None
        frame = choose(frame, banded, ctx.learning, incident.incident_id, step, hashes)
    frame = frame.join(
        perks.select(
            candidate="perk_id",
            perk_kind="perk_kind",
            perk_value="perk_value",
            perk_cost="perk_cost",
            currency="currency",
            validity_days="validity_days",
        ),
        on="candidate",
        how="left",
    )
    if history.is_empty():
        frame = frame.with_columns(
            held_id=pl.lit(None, pl.String),
            held_value=pl.lit(None, pl.Float64),
            held_cost=pl.lit(None, pl.Float64),
        )
    else:
        frame = frame.join(
            held_best.rename({"perk_kind": "_kind"}),
            left_on=["customer_id", "perk_kind"],
            right_on=["customer_id", "_kind"],
            how="left",
        )
    frame = _with_rule_limits(frame, table, recent)
    holdout = holdout_mask(
        frame["customer_id"],
        incident.incident_id,
        policy.holdout_share,
        frame["_id_hash"] if "_id_hash" in frame.columns else None,
    )
    has_candidate = pl.col("candidate").is_not_null()
    already = pl.col("held").list.contains(pl.col("candidate"))
    no_gain = pl.col("held_value").is_not_null() & (pl.col("perk_value") <= pl.col("held_value"))
    capped = (pl.col("held").list.len() == 0) & (pl.col("perk_incidents") >= policy.max_perks)
    frame = frame.with_columns(holdout=holdout & has_candidate).with_columns(
        _drop=pl.when(~has_candidate)
        .then(pl.lit(None, pl.String))
        .when(already)
        .then(pl.lit("already"))
        .when(no_gain)
        .then(pl.lit("no_gain"))
        .when(pl.col("holdout"))
        .then(pl.lit("holdout"))
        .when(capped)
        .then(pl.lit("cap"))
        .when(pl.col("_limit").is_not_null() & (pl.col("_uses") >= pl.col("_limit")))
        .then(pl.lit("limit"))
    )
    offered = has_candidate & pl.col("_drop").is_null()
    frame = frame.with_columns(
        charged_cost=pl.when(offered).then(
            (pl.col("perk_cost") - pl.col("held_cost").fill_null(0.0)).clip(lower_bound=0.0)
        ),
    )
    in_stock = _stock(frame, ctx.stock_left)
    frame = frame.with_columns(
        _drop=pl.when(offered & ~in_stock).then(pl.lit("stock")).otherwise(pl.col("_drop"))
    )
    frame = frame.with_columns(
        charged_cost=pl.when(pl.col("_drop").is_null()).then(pl.col("charged_cost"))
    )
    keep = allocate(frame, ctx.budget_left)
    given = has_candidate & pl.col("_drop").is_null()
    frame = frame.with_columns(
        _drop=pl.when(offered & pl.col("_drop").is_null() & ~keep)
        .then(pl.lit("budget"))
        .otherwise(pl.col("_drop"))
    ).with_columns(
        perk_id=pl.when(given).then(pl.col("candidate")),
        charged_cost=pl.when(given).then(pl.col("charged_cost")),
        replaces=pl.when(given).then(pl.col("held_id")),
        propensity=pl.when(has_candidate & ~already & ~no_gain)
        .then(
            pl.when(pl.col("holdout"))
            .then(pl.lit(policy.holdout_share))
            .otherwise(pl.lit(1.0 - policy.holdout_share) * pl.col("choice_p"))
        )
        .otherwise(pl.lit(1.0)),
        needs_human=pl.col("other_incidents") > 0,
    )
    frame = _perk_facts(frame, table, ctx.now).with_columns(_given=given)
    rendered = render_texts(frame, book, incident.kind, "message_kind", "_given")
    frame = frame.with_columns(
        text=rendered.text,
        text_language=rendered.text_language,
        text_shell=rendered.text_shell,
        _kept_name=rendered.first_name,
    )
    frame = _with_reasons(frame, ctx)
    return frame.with_columns(
        entitlements=pl.lit(_entitlements_json(ctx)),
        airport=pl.lit(incident.facts.origin, dtype=pl.String),
    ).select(
        *(
            pl.col(c).cast(pl.String) if c in ("channel", "language") else pl.col(c)
            for c in DECISION_COLUMNS
        ),
        "reason_id",
        "text_shell",
        pl.col("_kept_name").alias("first_name"),
    )


def _titles(table: OfferTable) -> pl.DataFrame:
    """(perk_id, _lang, perk_title) for every perk and language, fallbacks applied."""
    rows = []
    for perk in table.perks:
        for language, chain in LANGUAGE_FALLBACK.items():
            title = next((perk.title[lang] for lang in chain if lang in perk.title), None)
            if title is None and perk.title:
                title = next(iter(perk.title.values()))
            rows.append((perk.id, language, title))
    return pl.DataFrame(
        rows,
        schema={"perk_id": pl.String, "_lang": pl.String, "perk_title": pl.String},
        orient="row",
    )


def _perk_facts(frame: pl.DataFrame, table: OfferTable, now: datetime) -> pl.DataFrame:
    """Title (customer's language, else English), code and validity of the given perk."""
    given = pl.col("perk_id").is_not_null()
    titles = _titles(table)

    def title(situations: pl.DataFrame) -> pl.DataFrame:
        return situations.with_columns(_lang=pl.col("language").cast(pl.String)).join(
            titles, on=["perk_id", "_lang"], how="left"
        )

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


#: Columns that decide the wording of the reasons; customers sharing them share the words.
_REASON_KEYS = (
    "_limit",
    "segment",
    "segment_description",
    "message_kind",
    "rule_id",
    "candidate",
    "_drop",
    "replaces",
    "held_id",
    "charged_cost",
    "needs_human",
    "other_incidents",
    "perk_incidents",
    "_no_channel",
    "_lang",
    "text_language",
    "_learn",
    "_set",
)


def _reason_text(row: dict[str, Any], ctx: StepContext) -> str:
    """Why this decision, in words a service agent can read back to the customer (JSON list)."""
    policy = ctx.policy
    reasons = [
        f"segment {row['segment']}: {row['segment_description']}",
        f"step {ctx.step}: delay of {ctx.incident.facts.delay_minutes} min",
        "first message of this incident: apology"
        if row["message_kind"] == "apology"
        else "customer already apologized to in this incident: update",
        "no offer rule matched"
        if row["rule_id"] is None
        else f"rule {row['rule_id']} matched: {row['candidate']}",
    ]
    if row["_learn"] == "explore":
        reasons.append(
            f"learning: trying {row['candidate']} among interchangeable perks "
            f"{row['_set']} (Thompson sampling on acceptance so far)"
        )
    elif row["_learn"] == "exploit":
        reasons.append(
            f"learning: {row['candidate']} has the best acceptance so far among "
            f"interchangeable perks {row['_set']}"
        )
    if ctx.entitlement_note:
        reasons.append(ctx.entitlement_note)
    band = ctx.value.band(ctx.step)
    if band is not None:
        reasons.append(
            f"value band for step {ctx.step}: {band.min_value:g}-{band.max_value:g}, "
            "the same for everyone affected"
        )
    drop = row["_drop"]
    if drop == "already":
        reasons.append(f"perk {row['candidate']} was already issued in this incident")
    elif drop == "no_gain":
        reasons.append(
            f"perk {row['candidate']} adds no value over {row['held_id']} held from this incident"
        )
    elif drop == "holdout":
        reasons.append(
            f"holdout: {policy.holdout_share:.0%} of each incident get the message and what the "
            "law owes, no perk, so the perk's effect can be measured"
        )
    elif drop == "cap":
        reasons.append(
            f"contact cap: perks in {row['perk_incidents']} other incidents within "
            f"{policy.window_days} days (limit {policy.max_perks})"
        )
    elif drop == "limit":
        reasons.append(
            f"rule {row['rule_id']} allows {row['candidate']} at most {row['_limit']} times "
            f"per customer within {policy.window_days} days"
        )
    elif drop == "stock":
        reasons.append(f"stock: no {row['candidate']} left at {ctx.incident.facts.origin} today")
    elif drop == "budget":
        reasons.append(
            f"budget: the incident budget left ({ctx.budget_left or 0:,.2f}) went to perks "
            "with more value per cost"
        )
    if row["replaces"] is not None:
        reasons.append(
            f"upgrade of {row['replaces']}: charged the difference, {row['charged_cost']:.2f}"
        )
    if row["needs_human"]:
        reasons.append(
            f"second failure within the window ({row['other_incidents']} other incidents): "
            "flagged for a human"
        )
    if row["_no_channel"]:
        reasons.append("no allowed channel: no message")
    if row["text_language"] is not None and row["text_language"] != row["_lang"]:
        reasons.append(f"no {row['_lang']} template: sent in {row['text_language']}")
    return msgspec.json.encode(reasons).decode()


def _entitlements_json(ctx: StepContext) -> str:
    return msgspec.json.encode(ctx.entitlements).decode()


def _with_reasons(frame: pl.DataFrame, ctx: StepContext) -> pl.DataFrame:
    """Reasons as JSON text, worded once per distinct situation and joined back.

    A million customers fall into a few hundred situations (segment, rule, outcome), so the
    words are built per situation, not per customer.
    """
    keyed = frame.with_columns(
        _no_channel=pl.col("channel").is_null(), _lang=pl.col("language").cast(pl.String)
    ).with_columns(_situation=situation_key(_REASON_KEYS))
    situations = keyed.select("_situation", *_REASON_KEYS).unique("_situation")
    words = [_reason_text(row, ctx) for row in situations.iter_rows(named=True)]
    owed = _entitlements_json(ctx)
    lookup = situations.select("_situation").with_columns(
        reasons=pl.Series(words, dtype=pl.String),
        reason_id=pl.Series([reason_id(w, owed) for w in words], dtype=pl.Int64),
    )
    return keyed.join(lookup, on="_situation", how="left", maintain_order="left")
