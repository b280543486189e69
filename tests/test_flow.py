"""One incident through the whole flow, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import polars as pl
import pytest

from api.runtime import Runtime
from offers.flow import UnknownCustomers, apply_update
from offers.incidents.kinds import EscalationPolicy, FlightFacts, Incident


def incident(delay: int, incident_id: str = "MG123-2026-11-23") -> Incident:
    return Incident(
        incident_id=incident_id,
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
        facts=FlightFacts(delay_minutes=delay, flight="MG123"),
    )


def passengers(runtime: Runtime, n: int = 120) -> list[str]:
    return runtime.book.frame["customer_id"].sample(n, seed=3).to_list()


@pytest.mark.parametrize(
    ("delay", "step"),
    [(0, 0), (29, 0), (30, 1), (44, 1), (45, 2), (89, 2), (90, 3), (134, 3), (135, 4), (190, 5)],
)
def test_escalation_steps_every_45_minutes_after_notice(delay: int, step: int) -> None:
    assert EscalationPolicy().step(delay) == step


def test_growing_delay_gives_one_row_per_customer_per_step(runtime: Runtime) -> None:
    ids = passengers(runtime)
    now = datetime.now(UTC)
    for delay in (30, 60, 100, 140, 190):
        out = apply_update(runtime.parts(), incident(delay), ids, now)
        assert out.issued == len(ids)
        assert out.decisions.height == len(ids)
    stored = runtime.ledger.decisions("MG123-2026-11-23")
    assert stored.height == 5 * len(ids)
    assert stored.group_by("customer_id", "step").len()["len"].max() == 1
    # the first message apologizes, every later one is an update
    kinds = stored.group_by("step").agg(pl.col("message_kind").unique())
    assert dict(zip(kinds["step"], kinds["message_kind"].to_list(), strict=True)) == {
        1: ["apology"],
        2: ["update"],
        3: ["update"],
        4: ["update"],
        5: ["update"],
    }
    # nobody holds the same perk twice from one incident
    perks = stored.drop_nulls("perk_id").group_by("customer_id", "perk_id").len()
    assert perks["len"].max() == 1


def test_replay_issues_nothing_and_returns_the_same_decisions(runtime: Runtime) -> None:
    ids = passengers(runtime)
    first = apply_update(runtime.parts(), incident(100), ids, datetime.now(UTC))
    again = apply_update(runtime.parts(), incident(100), ids, datetime.now(UTC))
    assert first.issued == len(ids)
    assert again.issued == 0
    assert again.decisions.equals(first.decisions)  # codes included: nothing re-drawn
    assert runtime.ledger.count("MG123-2026-11-23") == len(ids)


def test_concurrent_replays_record_each_decision_once(runtime: Runtime) -> None:
    ids = passengers(runtime)
    now = datetime.now(UTC)
    with ThreadPoolExecutor(max_workers=6) as pool:
        outs = list(
            pool.map(lambda _: apply_update(runtime.parts(), incident(50), ids, now), range(6))
        )
    assert sum(o.issued for o in outs) == len(ids)
    assert runtime.ledger.count("MG123-2026-11-23") == len(ids)
    codes = {tuple(o.decisions.sort("customer_id")["perk_code"].to_list()) for o in outs}
    assert len(codes) == 1  # every caller saw the stored decisions


def test_a_shrinking_delay_claws_nothing_back(runtime: Runtime) -> None:
    ids = passengers(runtime, 30)
    apply_update(runtime.parts(), incident(100), ids, datetime.now(UTC))
    out = apply_update(runtime.parts(), incident(40), ids, datetime.now(UTC))
    assert out.issued == 0
    assert runtime.ledger.count("MG123-2026-11-23") == 30
    assert runtime.ledger.incident("MG123-2026-11-23")["step"] == 3  # type: ignore[index]


def test_below_notice_threshold_nothing_is_sent(runtime: Runtime) -> None:
    out = apply_update(runtime.parts(), incident(20), passengers(runtime), datetime.now(UTC))
    assert out.step == 0 and out.issued == 0 and out.decisions.is_empty()
    assert runtime.ledger.count("MG123-2026-11-23") == 0


def test_unknown_customer_records_nothing(runtime: Runtime) -> None:
    ids = [*passengers(runtime, 5), "nobody-1"]
    with pytest.raises(UnknownCustomers, match="nobody-1"):
        apply_update(runtime.parts(), incident(60), ids, datetime.now(UTC))
    assert runtime.ledger.incident("MG123-2026-11-23") is None
    assert runtime.ledger.count("MG123-2026-11-23") == 0


def test_dry_run_answers_but_writes_nothing(runtime: Runtime) -> None:
    ids = passengers(runtime, 40)
    out = apply_update(runtime.parts(), incident(60), ids, datetime.now(UTC), dry_run=True)
    assert out.dry_run and out.decisions.height == 40 and out.issued == 0
    assert runtime.ledger.incident("MG123-2026-11-23") is None
    assert runtime.ledger.count("MG123-2026-11-23") == 0


def test_customers_added_later_get_an_apology_at_the_current_step(runtime: Runtime) -> None:
    first, later = passengers(runtime, 20)[:10], passengers(runtime, 20)[10:]
    apply_update(runtime.parts(), incident(60), first, datetime.now(UTC))
    out = apply_update(runtime.parts(), incident(100), later, datetime.now(UTC))
    assert out.issued == 20  # the earlier ten are still affected and cross step 3 too
    kinds = dict(out.decisions.select("customer_id", "message_kind").iter_rows())
    assert {kinds[c] for c in later} == {"apology"}
    assert {kinds[c] for c in first} == {"update"}


def test_customers_named_before_notice_or_later_are_each_counted_once(runtime: Runtime) -> None:
    """Customers named while nothing is sent wait in incident_customers; the rest are
    found by their decisions. Either way each is affected, decided and counted once."""
    import sqlalchemy as sa

    from offers.ledger.schema import incident_customers

    ids = passengers(runtime, 6)
    parts, now, incident_id = runtime.parts(), datetime.now(UTC), "MG123-2026-11-23"
    assert apply_update(parts, incident(20), ids[:3], now).issued == 0  # below notice
    assert runtime.ledger.incident(incident_id)["customers"] == 3
    assert apply_update(parts, incident(50), ids[:5], now).issued == 5
    assert runtime.ledger.incident(incident_id)["customers"] == 5
    out = apply_update(parts, incident(95), ids[4:], now)  # step 3: the six
    assert out.issued == 6 and sorted(out.decisions["customer_id"]) == sorted(ids)
    assert apply_update(parts, incident(95), ids, now).issued == 0
    with runtime.ledger.reading() as tx:
        assert tx.customers(incident_id) == sorted(ids)
        listed = tx.conn.execute(sa.select(incident_customers.c.customer_id)).scalars().all()
    assert sorted(listed) == sorted(ids[:3])  # the decided were not written a second time
    assert runtime.ledger.incident(incident_id)["customers"] == 6
    assert runtime.ledger.summary(incident_id)["decisions"].to_list() == [5, 6]


def test_decisions_follow_segments_and_carry_reasons(runtime: Runtime) -> None:
    ids = runtime.book.frame["customer_id"].to_list()[:600]
    out = apply_update(runtime.parts(), incident(30), ids, datetime.now(UTC))
    perks = dict(
        out.decisions.group_by("segment").agg(pl.col("perk_id").mode().first()).iter_rows()
    )
    assert perks["road-warrior"] == "lounge-1h"
    assert perks["premium-business"] == "lounge-1h"
    assert perks["duty-free-shopper"] == "dutyfree-5"
    assert perks["leisure-family"] == "meal-12"
    row = out.decisions.filter(pl.col("segment") == "road-warrior").row(0, named=True)
    assert any("rule biz-lounge matched" in r for r in json.loads(row["reasons"]))
    assert row["perk_code"] and len(row["perk_code"]) == 8
    assert "MG123" in row["text"] and row["perk_code"] in row["text"]


def test_each_wording_is_stored_once_and_old_rows_still_read(runtime: Runtime) -> None:
    """Reasons, entitlements and the columns shared by a wording live once per distinct
    wording; rows from ledgers written before that (all on the row itself) read back with
    their own values."""
    import sqlalchemy as sa

    from offers.ledger.schema import decision_reasons, decisions
    from offers.ledger.wording import WORDS

    ids = passengers(runtime, 300)
    fresh = apply_update(runtime.parts(), incident(60), ids, datetime.now(UTC)).decisions
    stored = runtime.ledger.decisions("MG123-2026-11-23")
    assert stored.select("customer_id", *WORDS).equals(fresh.select("customer_id", *WORDS))
    with runtime.engine.begin() as conn:
        kept = conn.execute(sa.select(sa.func.count()).select_from(decision_reasons)).scalar()
        # a wording also has its message's shell, which the channel may change
        assert (
            stored.select(*WORDS).n_unique() <= kept <= stored.select(*WORDS, "channel").n_unique()
        )
        assert kept < len(ids) / 5
        old = stored["customer_id"][0]
        conn.execute(
            decisions.update()
            .where(decisions.c.customer_id == old)
            .values(
                reasons='["written the old way"]',
                entitlements="[]",
                perk_title="an old title",
                text="an old text",
                reason_id=None,
            )
        )
    again = runtime.ledger.decisions("MG123-2026-11-23", customer_id=old)
    assert json.loads(again["reasons"][0]) == ["written the old way"]
    assert again["perk_title"][0] == "an old title" and again["text"][0] == "an old text"


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_large_update_leaves_the_planner_statistics_of_its_rows(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a large write PostgreSQL knows the rows are there (pg_class.reltuples), so a
    page of them is read through the key at once instead of after autovacuum's visit."""
    import sqlalchemy as sa

    import offers.flow

    def known_rows() -> float:
        with runtime.engine.connect() as conn:
            query = "SELECT reltuples FROM pg_class WHERE oid = 'decisions'::regclass"
            return float(conn.execute(sa.text(query)).scalar_one())

    ids = runtime.book.frame["customer_id"].to_list()[:1500]
    monkeypatch.setattr(offers.flow, "REFRESH_STATISTICS_AFTER", 1000)
    apply_update(runtime.parts(), incident(60, "SMALL"), ids[:500], datetime.now(UTC))
    assert known_rows() < 500  # below the threshold: left to autovacuum (-1: never analysed)
    apply_update(runtime.parts(), incident(60, "LARGE"), ids, datetime.now(UTC))
    assert known_rows() == 2000
