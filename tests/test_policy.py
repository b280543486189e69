"""Contact policy, top-ups, holdout and budgets, through the real flow and ledger."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from api.runtime import Runtime
from offers.decide.allocation import allocate
from offers.decide.policy import (
    ContactPolicy,
    ValueBand,
    ValuePolicy,
    holdout_mask,
    schedule_followups,
)
from offers.flow import apply_update
from offers.incidents.kinds import FlightFacts, Incident
from offers.ledger.db import db_time
from offers.ledger.versions import publish_table

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def incident(delay: int, incident_id: str = "MG123-2026-11-23") -> Incident:
    return Incident(
        incident_id=incident_id,
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 23, 5, 0, tzinfo=UTC),
        facts=FlightFacts(delay_minutes=delay, flight="MG123"),
    )


def ids_of(runtime: Runtime, segment: str, n: int) -> list[str]:
    frame = runtime.book.frame.filter(pl.col("segment") == segment)
    return frame["customer_id"].head(n).to_list()


def test_holdout_share_is_deterministic_and_within_tolerance() -> None:
    ids = pl.Series([f"c{i:07d}" for i in range(20_000)])
    first = holdout_mask(ids, "MG1", 0.05)
    assert first.equals(holdout_mask(ids, "MG1", 0.05))
    assert 0.045 <= first.mean() <= 0.055  # type: ignore[operator]
    other = holdout_mask(ids, "MG2", 0.05)
    assert not first.equals(other)  # a different incident holds out different customers


def test_holdout_gets_message_and_no_perk_and_logs_propensity(runtime: Runtime) -> None:
    ids = runtime.book.frame["customer_id"].head(1000).to_list()
    out = apply_update(runtime.parts(), incident(30), ids, NOW)
    held = out.decisions.filter("holdout")
    treated = out.decisions.filter(~pl.col("holdout") & pl.col("perk_id").is_not_null())
    assert 20 <= held.height <= 90
    assert held["perk_id"].null_count() == held.height
    assert held["text"].null_count() == 0
    assert set(held["propensity"]) == {0.05} and set(treated["propensity"]) == {0.95}
    assert all(any("holdout" in r for r in reasons) for reasons in map(json.loads, held["reasons"]))


def test_upgrade_of_the_same_kind_is_charged_the_difference(runtime: Runtime) -> None:
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0))
    shoppers = ids_of(runtime, "duty-free-shopper", 20)
    first = apply_update(parts, incident(30), shoppers, NOW)
    assert set(first.decisions["perk_id"]) == {"dutyfree-5"}
    second = apply_update(parts, incident(60), shoppers, NOW)
    row = second.decisions.row(0, named=True)
    assert (row["perk_id"], row["replaces"]) == ("dutyfree-10", "dutyfree-5")
    assert row["perk_cost"] == 8.0 and row["charged_cost"] == pytest.approx(4.0)
    assert any("upgrade of dutyfree-5" in r for r in json.loads(row["reasons"]))
    assert second.spent == pytest.approx(20 * 4.0 + 20 * 4.0)


def test_perk_cap_per_window_and_second_failure_flagged(runtime: Runtime) -> None:
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0, max_perks=2))
    who = ids_of(runtime, "leisure-family", 5)
    for n in range(1, 4):
        out = apply_update(parts, incident(30, f"INC-{n}"), who, NOW + timedelta(days=n))
        flagged = set(out.decisions["needs_human"])
        assert flagged == ({False} if n == 1 else {True})
    assert out.decisions["perk_id"].null_count() == 5  # third incident: cap of 2 reached
    assert all(
        any("contact cap" in r for r in rs) for rs in map(json.loads, out.decisions["reasons"])
    )
    later = apply_update(parts, incident(30, "INC-4"), who, NOW + timedelta(days=40))
    assert later.decisions["perk_id"].null_count() == 0  # outside the 30-day window again


def test_large_overlapping_incidents_flag_and_spare_exactly_the_overlap(runtime: Runtime) -> None:
    """Above the size written by COPY: the second incident's customers who were in the
    first are flagged for a human and get no second round of follow-ups; nobody else."""
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0))
    ids = runtime.book.frame["customer_id"].to_list()
    first, second = ids[:2000], ids[1000:3000]
    apply_update(parts, incident(30, "BIG-1"), first, NOW)
    out = apply_update(parts, incident(30, "BIG-2"), second, NOW + timedelta(days=1))
    flagged = set(out.decisions.filter("needs_human")["customer_id"])
    assert flagged == set(first) & set(second)
    followed = out.decisions.filter(pl.col("followups").list.len() > 0)["customer_id"]
    assert followed.len() > 0 and not set(followed) & set(first)


def test_budget_is_never_exceeded_and_cuts_are_explained(runtime: Runtime) -> None:
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0))
    ids = runtime.book.frame["customer_id"].head(200).to_list()
    out = apply_update(parts, incident(30), ids, NOW, budget=500.0)
    assert 0 < out.spent <= 500.0
    cut = out.decisions.filter(pl.col("perk_id").is_null())
    assert cut.height > 0
    assert all(any(r.startswith("budget:") for r in rs) for rs in map(json.loads, cut["reasons"]))
    # later steps spend only what is left
    more = apply_update(parts, incident(60), ids, NOW)
    assert more.spent <= 500.0 + 1e-9


@pytest.mark.parametrize("workers", [20])
def test_budget_holds_under_concurrent_updates(runtime: Runtime, workers: int) -> None:
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0))
    ids = runtime.book.frame["customer_id"].head(300).to_list()
    apply_update(parts, incident(30), ids[:10], NOW, budget=900.0)
    delays = [30 + 15 * (i % 10) for i in range(workers)]
    chunks = [ids[i * 15 : (i + 1) * 15] for i in range(workers)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda a: apply_update(parts, incident(a[0]), a[1], NOW),
                zip(delays, chunks, strict=True),
            )
        )
    assert runtime.ledger.spent("MG123-2026-11-23") <= 900.0 + 1e-9
    stored = runtime.ledger.decisions("MG123-2026-11-23")
    assert stored.group_by("customer_id", "step").len()["len"].max() == 1


def test_allocation_keeps_value_dense_perks_then_fills_slack() -> None:
    frame = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "perk_value": [40.0, 12.0, 10.0, 150.0, None],
            "charged_cost": [12.0, 8.0, 4.0, 40.0, None],
        }
    )
    # densities: a 3.33, b 1.5, c 2.5, d 3.75 -> d, a fit 52; slack 8 -> c (4) fits, b (8) not
    assert allocate(frame, 60.0).to_list() == [True, False, True, True, True]
    assert allocate(frame, None).all()
    assert allocate(frame, 0.0).to_list() == [False, False, False, False, True]


def test_followups_are_scheduled_outside_quiet_hours(runtime: Runtime) -> None:
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0))
    ids = runtime.book.frame.filter(pl.col("consent_marketing"))["customer_id"].head(30).to_list()
    out = apply_update(parts, incident(30), ids, NOW)
    kinds = out.decisions["followups"].list.eval(pl.element().struct.field("kind"))
    assert all(k.to_list() == ["check-in", "feedback"] for k in kinds)
    due = runtime.ledger.followups_due(NOW + timedelta(days=30))
    assert due.height == 60
    # a second incident inside the window schedules nothing more for the same people
    apply_update(parts, incident(30, "OTHER"), ids, NOW + timedelta(days=1))
    assert runtime.ledger.followups_due(NOW + timedelta(days=60)).height == 60


def test_an_allowance_of_one_contact_keeps_only_the_first_followup(runtime: Runtime) -> None:
    contact = ContactPolicy(holdout_share=0, marketing_contacts_per_window=1)
    parts = replace(runtime.parts(), contact=contact)
    ids = runtime.book.frame.filter(pl.col("consent_marketing"))["customer_id"].head(20).to_list()
    out = apply_update(parts, incident(30), ids, NOW)
    kinds = out.decisions["followups"].list.eval(pl.element().struct.field("kind"))
    stored = runtime.ledger.decisions(out.incident_id)["followups"]
    assert all(k.to_list() == ["check-in"] for k in kinds)
    assert stored.to_list() == out.decisions["followups"].to_list()
    due = runtime.ledger.followups_due(NOW + timedelta(days=30))
    assert due["kind"].to_list() == ["check-in"] * 20


@pytest.mark.parametrize(
    ("tz", "decided", "due_utc"),
    [
        ("Asia/Taipei", "2026-11-25T14:00", "2026-11-28T00:00"),  # 22:00 local -> 08:00
        ("Asia/Taipei", "2026-11-25T02:00", "2026-11-27T02:00"),  # 10:00 local: fine
        ("Europe/London", "2026-11-25T21:30", "2026-11-28T08:00"),  # 21:30 local -> 08:00
        ("America/New_York", "2026-11-25T06:00", "2026-11-27T13:00"),  # 01:00 local -> 08:00
    ],
)
def test_quiet_hours_follow_the_customers_timezone(tz: str, decided: str, due_utc: str) -> None:
    at = datetime.fromisoformat(decided).replace(tzinfo=UTC)
    plan = schedule_followups(
        pl.DataFrame({"customer_id": ["x"], "timezone": [tz]}), at, ContactPolicy()
    )
    check_in = plan.filter(pl.col("kind") == "check-in")["due_at"][0]
    assert check_in == datetime.fromisoformat(due_utc).replace(tzinfo=UTC)


def test_stable_hash_matches_reference_values_and_spreads_sequential_ids() -> None:
    from segmentation.ids import fnv1a, id_hash, unit_interval

    assert int(fnv1a(pl.Series(["a"]))[0]) == 0xAF63DC4C8601EC8C  # FNV-1a 64 test vector
    u = unit_interval(pl.Series([f"c{i:06d}" for i in range(1, 2001)]), "MG123")
    assert 0.4 < float(u.mean()) < 0.6
    assert 0.03 < float((u < 0.05).mean()) < 0.07
    ids = pl.Series([f"c{i:06d}" for i in range(1, 2001)])
    assert (unit_interval(ids, "MG123", id_hash(ids)) == u).all()


#: Ids are text: any character but NUL (accents, CJK, emoji), not only ASCII.
_ID_TEXT = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=12
)


@given(st.lists(_ID_TEXT), _ID_TEXT)
def test_one_id_hashes_as_a_column_of_ids(ids: list[str], salt: str) -> None:
    """A preview hashes its one customer in plain Python; the holdout must not differ, and
    an id like `josé-1` or `陈-7` hashes like any other (it used to stop the profile book)."""
    from segmentation.ids import unit_interval, unit_value

    column = unit_interval(pl.Series(ids, dtype=pl.String), salt)
    assert [unit_value(i, salt) for i in ids] == column.tolist()


def test_value_band_keeps_everyone_in_the_same_band(runtime: Runtime) -> None:
    narrow = ValuePolicy(bands=[ValueBand(from_step=1, min_value=5, max_value=15)])
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0), value=narrow)
    warriors = ids_of(runtime, "road-warrior", 10)
    out = apply_update(parts, incident(30), warriors, NOW)
    assert set(out.decisions["perk_id"]) == {"meal-12"}  # the lounge pass is out of band
    assert all(
        any("value band for step 1: 5-15" in r for r in json.loads(rs))
        for rs in out.decisions["reasons"]
    )
    assert (out.decisions["perk_value"] <= 15).all()


def _publish_with_stock(runtime: Runtime, per_day: int) -> None:
    from offers.catalog.tables import DEFAULTS

    body = (DEFAULTS / "offers.toml").read_text(encoding="utf-8")
    body = body.replace(
        'id = "lounge-1h"\n',
        f'id = "lounge-1h"\nstock = [{{ airport = "TPE", per_day = {per_day} }}]\n',
    )
    publish_table(runtime.ledger, "flight-delay", body, "tests", "stock", datetime.now(UTC))
    runtime.reload_table()


def _at_tpe(delay: int, incident_id: str) -> Incident:
    return Incident(
        incident_id=incident_id,
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 23, 5, 0, tzinfo=UTC),
        facts=FlightFacts(delay_minutes=delay, flight="MG123", origin="TPE"),
    )


def test_stock_per_airport_and_day_is_never_oversold(runtime: Runtime) -> None:
    _publish_with_stock(runtime, per_day=12)
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0))
    warriors = ids_of(runtime, "road-warrior", 60)
    first = apply_update(parts, _at_tpe(30, "TPE-1"), warriors[:20], NOW)
    assert first.decisions.filter(pl.col("perk_id") == "lounge-1h").height == 12
    short = first.decisions.filter(pl.col("perk_id").is_null())
    assert short.height == 8
    assert all(
        any("stock: no lounge-1h left at TPE" in r for r in json.loads(rs))
        for rs in short["reasons"]
    )
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(
            pool.map(
                lambda n: apply_update(
                    parts, _at_tpe(30, f"TPE-{n}"), warriors[n * 10 : n * 10 + 10], NOW
                ),
                range(2, 6),
            )
        )
    given = sum(
        runtime.ledger.decisions(f"TPE-{n}").filter(pl.col("perk_id") == "lounge-1h").height
        for n in range(1, 6)
    )
    assert given == 12
    tomorrow = apply_update(parts, _at_tpe(30, "TPE-9"), warriors[:5], NOW + timedelta(days=1))
    assert tomorrow.decisions.filter(pl.col("perk_id") == "lounge-1h").height == 5


def test_a_preview_counts_stock_without_waiting_for_an_update_at_the_airport(
    runtime: Runtime,
) -> None:
    """An update handing out stock holds the airport's stock lock until it commits; a
    preview reads what is given as it stands instead of waiting (and holding up its
    server meanwhile), and sees the same count."""
    _publish_with_stock(runtime, per_day=3)
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0))
    warriors = ids_of(runtime, "road-warrior", 6)
    given = apply_update(parts, _at_tpe(30, "TPE-1"), warriors[:4], NOW)
    assert given.decisions.filter(pl.col("perk_id") == "lounge-1h").height == 3
    with ThreadPoolExecutor(max_workers=1) as pool, runtime.ledger.writing() as tx:
        assert tx.stock_used("TPE", ["lounge-1h"], NOW) == {"lounge-1h": 3}  # the lock, held
        asked = pool.submit(runtime.previews, parts, _at_tpe(30, "TPE-2"), warriors[5], NOW)
        preview = asked.result(timeout=60)  # before this transaction ends
        assert runtime.ledger.stock_used("TPE", ["lounge-1h"], NOW) == {"lounge-1h": 3}
    assert preview is not None and preview["perk_id"] != "lounge-1h"
    assert any("stock: no lounge-1h left at TPE" in r for r in json.loads(preview["reasons"]))


def test_stock_is_counted_through_its_index(runtime: Runtime) -> None:
    """Every update and preview at an airport with stocked perks counts them: through
    `ix_decisions_stock`, not by reading every decision of the ledger."""
    _publish_with_stock(runtime, per_day=3)
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0))
    apply_update(parts, _at_tpe(30, "TPE-1"), ids_of(runtime, "road-warrior", 4), NOW)
    engine = runtime.ledger.engine
    counts: list[tuple[str, Any]] = []

    def keep(_conn: object, _cursor: object, sql: str, params: Any, *_: object) -> None:
        if "count(" in sql.lower() and "airport" in sql:
            counts.append((sql, params))

    sa.event.listen(engine, "before_cursor_execute", keep)
    try:
        with runtime.ledger.writing() as tx:
            tx.stock_used("TPE", ["lounge-1h"], NOW)
    finally:
        sa.event.remove(engine, "before_cursor_execute", keep)
    assert len(counts) == 1
    read = runtime.ledger._stock_read  # a preview's count, straight on the driver
    day = NOW.replace(hour=0)
    values = read._compiled.construct_params(
        {"airport": "TPE", "start": db_time(engine, day), "end": db_time(engine, day)}
    )
    args = tuple(values[name] for name in read._order) if read._order else values
    for sql, params in [*counts, (read._compiled.string, args)]:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET enable_seqscan = off")  # an index it can use, it uses
                plan = [row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}", params)]
            else:
                explain = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
                plan = [str(row[-1]) for row in explain]
        assert "ix_decisions_stock" in "\n".join(plan), plan


def test_channel_opt_outs_fall_back_or_send_nothing(runtime: Runtime) -> None:
    from segmentation.profiles import CHANNELS

    channels = pl.List(pl.Enum(CHANNELS))
    people = runtime.book.frame.head(3).with_columns(
        preferred_channel=pl.Series(["sms", "app", "chat"], dtype=pl.Enum(CHANNELS)),
        allowed_channels=pl.Series([["sms", "email"], ["email", "chat"], []], dtype=channels),
    )
    parts = replace(
        runtime.parts(),
        contact=ContactPolicy(holdout_share=0),
        select_profiles=lambda ids: people.filter(pl.col("customer_id").is_in(list(ids))),
    )
    out = apply_update(parts, incident(30), people["customer_id"].to_list(), NOW)
    rows = {r["customer_id"]: r for r in out.decisions.iter_rows(named=True)}
    first, second, third = people["customer_id"].to_list()
    assert rows[first]["channel"] == "sms"  # preferred and allowed
    assert rows[second]["channel"] == "email"  # opted out of app: next allowed channel
    assert rows[third]["channel"] is None and rows[third]["text"] is None
    assert "no allowed channel: no message" in json.loads(rows[third]["reasons"])
    assert rows[third]["perk_id"] is not None  # the perk is still owed and recorded


def test_per_customer_limit_of_a_rule(runtime: Runtime) -> None:
    from offers.catalog.tables import DEFAULTS

    body = (DEFAULTS / "offers.toml").read_text(encoding="utf-8")
    body = body.replace('id = "fallback-meal"\n', 'id = "fallback-meal"\nper_customer_limit = 1\n')
    publish_table(runtime.ledger, "flight-delay", body, "tests", "limit", datetime.now(UTC))
    runtime.reload_table()
    parts = replace(runtime.parts(), contact=ContactPolicy(holdout_share=0))
    families = ids_of(runtime, "leisure-family", 5)
    first = apply_update(parts, incident(30, "INC-A"), families, NOW)
    assert set(first.decisions["perk_id"]) == {"meal-12"}
    second = apply_update(parts, incident(30, "INC-B"), families, NOW + timedelta(days=2))
    assert second.decisions["perk_id"].null_count() == 5
    reasons = [json.loads(r) for r in second.decisions["reasons"]]
    assert all(any("at most 1 times per customer" in r for r in rs) for rs in reasons)
