"""Previews: remembered by situation, yet customer by customer what the engine decides."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import polars as pl
import sqlalchemy as sa
from litestar.serialization import encode_json

from api.http.preview_json import preview_json
from api.http.wire import decision_out, decisions_out
from api.runtime import Runtime
from offers.catalog.fields import Range
from offers.catalog.tables import OfferTable, Stock
from offers.decide.choice import ExploreConfig, Learning
from offers.decide.columns import profile_columns
from offers.decide.engine import decide
from offers.decide.policy import ContactPolicy
from offers.flow import Parts, apply_update, step_context
from offers.incidents.kinds import FlightFacts, Incident
from offers.learning.evidence import LearningSource, posteriors
from offers.ledger.frames import DECISION_SCHEMA
from offers.ledger.schema import decisions
from offers.preview import Preview, Previews
from offers.record import LEDGER_ONLY, RECENT_SCHEMA

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def incident(delay: int, incident_id: str = "MG1") -> Incident:
    return Incident(
        incident_id=incident_id,
        kind="flight_delay",
        occurred_at=NOW - timedelta(hours=2),
        facts=FlightFacts(delay_minutes=delay, flight="MG1", origin="TPE"),
    )


def engine_alone(
    parts: Parts, facts: Incident, customer_id: str, budget: float | None = None
) -> dict[str, Any]:
    """The oracle: the incident engine on this one customer's real row, nothing remembered."""
    step = parts.escalation(facts.kind).step(facts.facts.delay_minutes)
    with parts.ledger.reading() as tx:
        exists = tx.incident(facts.incident_id) is not None
        spent = tx.spent(facts.incident_id) if exists else 0.0
        if budget is None and exists:
            budget = tx.incident(facts.incident_id)["budget"]  # type: ignore[index]
        table = parts.table(facts.kind)
        owed = parts.entitlements(facts)
        ctx = step_context(parts, tx, table, facts, step, NOW, owed, budget, spent)
        since = NOW - timedelta(days=parts.contact.window_days)
        d = decisions.c
        recent = sa.select(d.customer_id, d.incident_id, d.perk_id).where(
            d.customer_id == customer_id, d.created_at >= since, d.incident_id != facts.incident_id
        )
        fresh = decide(
            parts.select_profiles([customer_id]),
            tx.history(facts.incident_id).filter(pl.col("customer_id") == customer_id),
            pl.DataFrame(tx.conn.execute(recent).all(), schema=RECENT_SCHEMA, orient="row"),
            ctx,
            table,
            parts.book,
        )
    row = fresh.cast(DECISION_SCHEMA).drop(LEDGER_ONLY).to_dicts()[0]  # type: ignore[arg-type]
    return row | {"followups": []}


def learned(runtime: Runtime) -> Learning:
    """Posteriors for every segment and perk, enough to explore and exploit (seeded)."""
    segments = runtime.book.frame["segment"].unique().to_list()
    perks = [p.id for p in runtime.table().perks]
    rows = [
        {
            "segment": s,
            "perk_id": p,
            "delivered": True,
            "redeemed": i < 3 + (7 * j) % 11,
            "rating": None,
            "complaint": False,
        }
        for s in segments
        for j, p in enumerate(perks)
        for i in range(20)
    ]
    evidence = pl.DataFrame(rows, schema_overrides={"rating": pl.Float64})
    return Learning(posteriors(evidence), ExploreConfig(share=0.3, min_events=1), seed=5)


def with_alternative(table: OfferTable) -> OfferTable:
    """The credit of a long delay, or a lounge pass, for everyone from step 4 on: the engine
    learns which (explorers' draws are each their own, exploiters share their situation)."""
    credit = next(r for r in table.rules if r.id == "long-delay-credit")
    first = msgspec.structs.replace(credit, when={"step": Range(min=4)}, alternatives=["lounge-1h"])
    rules = [first, *(r for r in table.rules if r.id != credit.id)]
    return msgspec.structs.replace(table, rules=rules)


def with_pasts(runtime: Runtime, table: OfferTable | None = None) -> tuple[Parts, list[str]]:
    """300 customers, some with incidents in the contact window (caps, second-failure
    flags), some with this incident's first steps (updates, upgrades, perks held)."""
    learning = learned(runtime)
    choosing = with_alternative(table or runtime.table())
    parts = replace(
        runtime.parts(),
        contact=ContactPolicy(holdout_share=0.25),
        learning=lambda _now: learning,
        table=lambda _kind: choosing,
    )
    ids = runtime.book.frame["customer_id"].sample(300, seed=11).to_list()
    apply_update(parts, incident(200, "EARLIER"), ids[:120], NOW - timedelta(days=3))
    apply_update(parts, incident(100, "EARLIER-2"), ids[60:140], NOW - timedelta(days=2))
    apply_update(parts, incident(100, "EARLIER-3"), ids[90:130], NOW - timedelta(days=1))
    apply_update(parts, incident(50), ids[80:200], NOW - timedelta(minutes=30))
    return parts, ids


def same_as_alone(
    parts: Parts,
    later: Incident,
    answers: dict[str, dict[str, Any] | None],
    budget: float | None = None,
) -> set[str]:
    """Each answer is the engine's for that customer alone; returns the kinds of reason seen."""
    seen: set[str] = set()
    kinds = ("contact cap", "holdout", "flagged", "learning", "update", "stock:", "budget:")
    for customer_id, mine in answers.items():
        oracle = engine_alone(parts, later, customer_id, budget)
        seen |= {k for k in kinds if k in oracle["reasons"]}
        assert mine is not None and mine["customer_id"] == customer_id
        if oracle["perk_code"] is not None:
            assert mine["perk_code"] is not None and len(mine["perk_code"]) == 8
            oracle["text"] = oracle["text"].replace(oracle["perk_code"], mine["perk_code"])
            oracle["perk_code"] = mine["perk_code"]
        assert mine == oracle, customer_id
    return seen


def test_every_preview_is_what_the_engine_decides_for_that_customer(runtime: Runtime) -> None:
    parts, ids = with_pasts(runtime)
    previews = Previews()
    later = incident(140)
    answers = {c: previews(parts, later, c, NOW) for c in ids}
    seen = same_as_alone(parts, later, answers)
    # each kind of answer was checked, and most came from remembered situations
    assert seen == {"contact cap", "holdout", "flagged", "learning", "update"}
    assert previews.hits > 30 and previews.misses > 30
    assert (
        previews(parts, later, ids[0], NOW)["perk_code"]
        != previews(  # type: ignore[index]
            parts, later, ids[0], NOW
        )["perk_code"]
    )  # type: ignore[index]


def test_a_new_table_budget_or_delay_is_never_answered_from_memory(runtime: Runtime) -> None:
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0.0))
    previews = Previews()
    warrior = runtime.book.frame.filter(pl.col("segment") == "road-warrior")["customer_id"][0]
    before = previews(parts, incident(100), warrior, NOW)
    assert before is not None and before["perk_id"] is not None
    assert previews(parts, incident(100), warrior, NOW)["perk_id"] == before["perk_id"]  # type: ignore[index]
    assert previews.hits == 1
    broke = previews(parts, incident(100), warrior, NOW, budget=0.0)
    assert broke is not None and broke["perk_id"] is None and "budget" in broke["reasons"]
    # marketing publishes a table without that perk: the same situation, a new answer
    live = runtime.table()
    rules = [r for r in live.rules if r.perk != before["perk_id"]]
    new = msgspec.structs.replace(live, rules=rules)
    after = previews(replace(parts, table=lambda _kind: new), incident(100), warrior, NOW)
    assert after is not None and after["perk_id"] not in (None, before["perk_id"])
    longer = previews(parts, incident(190), warrior, NOW)
    assert longer is not None and longer["step"] > before["step"]


def test_one_decision_is_shaped_as_a_page_of_them(runtime: Runtime) -> None:
    """The preview shapes its one row without a frame; it must match the columnar shape."""
    ids = runtime.book.frame["customer_id"].head(60).to_list()
    apply_update(runtime.parts(), incident(50), ids, NOW)
    out = apply_update(runtime.parts(), incident(140), ids, NOW)
    frame = runtime.ledger.decisions("MG1", step=out.step)
    assert frame.filter(pl.col("perk_id").is_not_null()).height > 0
    assert decisions_out(frame) == [decision_out(row) for row in frame.to_dicts()]


def test_posteriors_read_again_but_unchanged_keep_what_previews_remember(
    runtime: Runtime,
) -> None:
    source = LearningSource(runtime.ledger, ttl=0.0)
    first = source(NOW)
    assert source(NOW) is first  # read again (ttl 0), the same evidence: the same object
    parts = replace(runtime.parts(), learning=source)
    previews = Previews()
    customer = runtime.book.frame["customer_id"][0]
    previews(parts, incident(100), customer, NOW)
    previews(parts, incident(100), customer, NOW)
    assert (previews.misses, previews.hits) == (1, 1)


def test_a_new_situation_asked_by_many_at_once_is_decided_once(runtime: Runtime) -> None:
    """A new incident's first previews arrive together: the engine runs once, the others
    wait for its answer."""
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0.0))
    previews = Previews()
    customer = runtime.book.frame["customer_id"][0]
    pending = [previews.look(parts, incident(100), customer, NOW) for _ in range(8)]
    assert all(callable(p) for p in pending)  # nobody has decided it yet
    engine = previews._engine
    engine.acquire()  # hold the engine until all eight are waiting
    with ThreadPoolExecutor(8) as pool:
        answers = [pool.submit(p) for p in pending if callable(p)]
        time.sleep(0.5)
        engine.release()
        rows = [a.result(timeout=60) for a in answers]
    assert previews.misses == 1
    assert len({(r["perk_id"], r["text"].replace(r["perk_code"] or "", "")) for r in rows}) == 1


def ask_together(
    parts: Parts, later: Incident, ids: list[str], budget: float | None
) -> tuple[Previews, dict[str, dict[str, Any] | None]]:
    """Every customer's preview asked at once, while the engine is busy."""
    previews = Previews()
    pending = {c: previews.look(parts, later, c, NOW, budget) for c in ids}
    engine = previews._engine
    engine.acquire()  # hold the engine until every asker is waiting
    with ThreadPoolExecutor(len(ids)) as pool:
        asked = {c: pool.submit(p) for c, p in pending.items() if callable(p)}
        joined, steady_since = -1, time.monotonic()
        while time.monotonic() - steady_since < 0.5:  # until nobody new joins for 0.5 s
            with previews._lock:
                now = sum(len(batch.wanted) for batch in previews._open.values())
            if now != joined:
                joined, steady_since = now, time.monotonic()
            time.sleep(0.02)
        engine.release()
        answers = {c: f.result(timeout=120) for c, f in asked.items()}
    assert len(answers) == len(ids)  # all new: nothing was remembered yet
    return previews, answers


def lounges_per_day(runtime: Runtime, per_day: int) -> OfferTable:
    live = runtime.table()
    stock = [Stock(airport="TPE", per_day=per_day)]
    perks = [
        msgspec.structs.replace(p, stock=stock) if p.id == "lounge-1h" else p for p in live.perks
    ]
    return msgspec.structs.replace(live, perks=perks)


def test_new_situations_asked_together_are_decided_together_yet_as_each_alone(
    runtime: Runtime,
) -> None:
    """A batch of new situations is one engine call; budget and stock, which customers
    decided together would share, still answer each customer as if alone."""
    parts, ids = with_pasts(runtime, lounges_per_day(runtime, 1))
    later = incident(140)
    # 15 left after the incident's first step: a lounge pass (12) each, not a credit (20)
    budget = runtime.ledger.spent("MG1") + 15.0
    previews, answers = ask_together(parts, later, ids, budget)
    assert previews.misses > 100 and previews.engine_calls <= 3
    seen = same_as_alone(parts, later, answers, budget)
    assert {"budget:", "holdout", "update", "learning"} <= seen
    lounges = [a for a in answers.values() if a and a["perk_id"] == "lounge-1h"]
    assert len(lounges) > 10  # one left in stock, and one each when asked alone
    # none left: each customer for whom the engine picks a lounge pass is told so
    none_left = with_alternative(lounges_per_day(runtime, 0))
    parts = replace(parts, table=lambda _kind: none_left)
    previews, answers = ask_together(parts, later, ids[:100], None)
    assert previews.engine_calls <= 3
    assert "stock:" in same_as_alone(parts, later, answers)
    assert any(a and a["perk_id"] == "credit-50" for a in answers.values())


def twins(runtime: Runtime, later: Incident) -> tuple[str, str]:
    """Two customers alike in every column the engine reads."""
    frame = runtime.book.frame
    alike = [
        c
        for c in profile_columns(runtime.table(), frame.columns, later)
        if c not in ("customer_id", "first_name")
    ]
    found = frame.group_by(alike).agg("customer_id").filter(pl.col("customer_id").list.len() > 1)
    first, second = found["customer_id"][0].to_list()[:2]
    return first, second


def test_the_cap_tells_apart_customers_in_as_many_other_incidents(runtime: Runtime) -> None:
    """Alike customers, each in three other incidents: perks from all three reach the
    cap, perks from two do not."""
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0.0))
    later = incident(140)
    capped, under = twins(runtime, later)
    bare = replace(parts, table=lambda _kind: msgspec.structs.replace(runtime.table(), rules=[]))
    for days, who, p in [
        (4, [capped, under], parts),
        (3, [capped, under], parts),
        (2, [capped], parts),
        (2, [under], bare),
    ]:
        apply_update(p, incident(200, f"E-{days}-{who[0]}"), who, NOW - timedelta(days=days))
    previews = Previews()
    answers = {c: previews(parts, later, c, NOW) for c in (capped, under)}
    assert previews.misses == 2
    assert "contact cap" in same_as_alone(parts, later, {capped: answers[capped]})
    assert "contact cap" not in same_as_alone(parts, later, {under: answers[under]})


def test_a_rule_limit_tells_apart_customers_who_got_its_perk_elsewhere(
    runtime: Runtime,
) -> None:
    later = incident(140)
    live = runtime.table()
    limited = msgspec.structs.replace(
        live, rules=[msgspec.structs.replace(r, per_customer_limit=1) for r in live.rules]
    )
    parts = replace(
        runtime.parts(), contact=ContactPolicy(holdout_share=0.0), table=lambda _kind: limited
    )
    got, not_yet = twins(runtime, later)
    bare = replace(parts, table=lambda _kind: msgspec.structs.replace(live, rules=[]))
    apply_update(parts, incident(140, "ELSEWHERE-1"), [got], NOW - timedelta(days=1))
    apply_update(bare, incident(140, "ELSEWHERE-2"), [not_yet], NOW - timedelta(days=1))
    previews = Previews()
    answers = {c: previews(parts, later, c, NOW) for c in (got, not_yet)}
    assert previews.misses == 2
    same_as_alone(parts, later, answers)
    assert answers[got] is not None and answers[got]["perk_id"] is None
    assert "at most 1 times per customer" in answers[got]["reasons"]
    assert answers[not_yet] is not None and answers[not_yet]["perk_id"] is not None


def test_a_remembered_answer_spliced_as_json_is_the_shaped_answer(runtime: Runtime) -> None:
    """The HTTP answer of a remembered situation is cut from its shell's encoded answer;
    byte for byte it is the customer's row shaped and encoded, whatever their name holds."""
    parts, ids = with_pasts(runtime)
    previews = Previews()
    later = incident(140)
    for customer in ids:
        previews(parts, later, customer, NOW)
    remembered = [previews.look(parts, later, c, NOW) for c in ids]
    spliced = [p for p in remembered if isinstance(p, Preview)]
    assert len(spliced) > 150 and any(p.code for p in spliced) and any(p.others for p in spliced)
    odd = replace(spliced[0], first_name='Zoë "Z" \\ \ue000\n', customer_id="C\ue003-1")
    for preview in [*spliced, odd]:
        assert preview_json(preview) == encode_json(decision_out(preview.row()))


def test_profiles_read_again_are_never_answered_from_the_old_ones(runtime: Runtime) -> None:
    """What a preview remembers of a customer lasts as long as the profiles it was read
    from: after a new import, the same situation speaks to the customer as now named."""
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0.0))
    customer = runtime.book.frame["customer_id"][0]
    name = runtime.book.one(customer)["first_name"]  # type: ignore[index]
    previews = Previews()
    before = previews(parts, incident(100), customer, NOW)
    assert before is not None and name in before["text"]

    def renamed(customer_id: str) -> dict[str, Any] | None:
        found = runtime.book.one(customer_id)
        return None if found is None else found | {"first_name": "Renamed"}

    after = previews(replace(parts, profile=renamed), incident(100), customer, NOW)
    assert after is not None and "Renamed" in after["text"] and name not in after["text"]
    assert previews.hits == 1  # the same situation, remembered
