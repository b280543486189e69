"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from offers.ledger.db import MIGRATIONS, create_engine, upgrade
from offers.ledger.schema import metadata
from offers.ledger.store import Ledger
from segmentation.model import Segmentation


def _alembic() -> Config:
    """Alembic's configuration for the project's migrations, to step through revisions."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def test_migrations_match_the_declared_schema(db_url: str) -> None:
    engine = create_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diffs = [d for d in compare_metadata(context, metadata) if not _alembic_own(d)]
    engine.dispose()
    assert diffs == []


def _alembic_own(diff: object) -> bool:
    """Alembic's version table is not part of the declared schema."""
    return "alembic_version" in repr(diff)


def test_publication_order_is_carried_over_from_publish_times(db_url: str) -> None:
    """Versions published before migration 0006 keep the order the engine saw them in."""
    import sqlalchemy as sa
    from alembic import command

    from offers.ledger.schema import offer_tables

    engine = create_engine(db_url)
    config = _alembic()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0005")
        insert = sa.text(
            "INSERT INTO offer_tables (name, version, body, published_at, published_by, reason)"
            " VALUES (:n, :v, 'x', :at, 'ana', 'r')"
        )
        conn.execute(insert, {"n": "b", "v": 1, "at": "2026-11-23 09:00:00"})
        conn.execute(insert, {"n": "a", "v": 1, "at": "2026-11-23 08:00:00"})
        conn.execute(insert, {"n": "a", "v": 2, "at": "2026-11-23 10:00:00"})
    upgrade(engine)
    with engine.connect() as conn:
        order = conn.execute(
            sa.select(offer_tables.c.name, offer_tables.c.version).order_by(offer_tables.c.seq)
        ).all()
    engine.dispose()
    assert [tuple(r) for r in order] == [("a", 1), ("b", 1), ("a", 2)]


def test_sqlite_keeps_incident_customers_in_their_key(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/ledger.db")
    upgrade(engine)
    with engine.connect() as conn:
        sql = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'incident_customers'"
        ).scalar()
    engine.dispose()
    assert "WITHOUT ROWID" in str(sql) and "PRIMARY KEY (incident_id, customer_id)" in str(sql)


def _decided(conn: sa.Connection, customer: str) -> None:
    """A decision row as every revision since 0001 can hold it."""
    conn.execute(
        sa.text(
            "INSERT INTO decisions (incident_id, step, customer_id, created_at, message_kind,"
            " channel, language, propensity) VALUES ('i', 1, :c, :at, 'apology', 'sms', 'en', 1)"
        ),
        {"c": customer, "at": datetime(2026, 11, 25, tzinfo=UTC)},
    )


def test_followups_of_a_customer_are_paired_into_one_row(db_url: str) -> None:
    """Follow-ups stored a row per kind before migration 0009 are still all due after it."""
    engine = create_engine(db_url)
    config = _alembic()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0008")
        insert = sa.text(
            "INSERT INTO followups (incident_id, customer_id, kind, step, due_at, channel,"
            " language) VALUES ('i', :c, :k, 1, :at, 'sms', 'en')"
        )
        for customer in ("a", "b"):
            _decided(conn, customer)
        conn.execute(insert, {"c": "a", "k": "feedback", "at": datetime(2026, 12, 2, tzinfo=UTC)})
        conn.execute(insert, {"c": "a", "k": "check-in", "at": datetime(2026, 11, 27, tzinfo=UTC)})
        conn.execute(insert, {"c": "b", "k": "check-in", "at": datetime(2026, 11, 28, tzinfo=UTC)})
    upgrade(engine)
    due = Ledger(engine).followups_due(datetime(2027, 1, 1, tzinfo=UTC))
    engine.dispose()
    assert due.select("customer_id", "kind").rows() == [
        ("a", "check-in"),
        ("b", "check-in"),
        ("a", "feedback"),
    ]


def test_followups_move_onto_their_decisions_and_back(db_url: str) -> None:
    """Migration 0011: each follow-up row lands on the decision it was scheduled with; the
    downgrade gives the table back with the same rows."""
    engine = create_engine(db_url)
    config = _alembic()
    paired_rows = sa.text(
        "SELECT customer_id, step, kind, due_at, then_kind, then_at, channel, language"
        " FROM followups ORDER BY customer_id"
    )
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0010")
        for customer in ("a", "b", "c"):
            _decided(conn, customer)
        conn.execute(
            sa.text(
                "INSERT INTO followups (incident_id, customer_id, step, kind, due_at, then_kind,"
                " then_at, channel, language) VALUES ('i', :c, 1, 'check-in', :at, :tk, :tat,"
                " 'sms', 'en')"
            ),
            [
                {
                    "c": "a",
                    "at": datetime(2026, 11, 27, tzinfo=UTC),
                    "tk": "feedback",
                    "tat": datetime(2026, 12, 2, tzinfo=UTC),
                },
                {"c": "b", "at": datetime(2026, 11, 28, tzinfo=UTC), "tk": None, "tat": None},
            ],
        )
        before = conn.execute(paired_rows).all()
        command.upgrade(config, "0011")
        assert not sa.inspect(conn).has_table("followups")
    upgrade(engine)  # the ledger reads the head's columns
    ledger = Ledger(engine)
    read = ledger.decisions("i").select("customer_id", "followups").rows()
    due = ledger.followups_due(datetime(2027, 1, 1, tzinfo=UTC))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0010")
        after = conn.execute(paired_rows).all()
    engine.dispose()
    assert [(c, [f["kind"] for f in fs]) for c, fs in read] == [
        ("a", ["check-in", "feedback"]),
        ("b", ["check-in"]),
        ("c", []),
    ]
    assert due.select("customer_id", "kind", "channel").rows() == [
        ("a", "check-in", "sms"),
        ("b", "check-in", "sms"),
        ("a", "feedback", "sms"),
    ]
    assert [tuple(r) for r in after] == [tuple(r) for r in before]


def test_message_shells_keep_old_texts_and_give_them_back_on_downgrade(
    db_url: str, population: pl.DataFrame, model: Segmentation
) -> None:
    """Rows written before migration 0013 keep their text; rows written as a shell and a
    name since get their text written back when it is undone."""
    from datetime import UTC, datetime

    import sqlalchemy as sa
    from alembic import command

    from offers.flow import Parts, apply_update
    from offers.incidents.kinds import EscalationPolicy, FlightFacts, Incident
    from offers.ledger.store import Ledger
    from offers.messages.book import load_default_book
    from offers.record import CODE_MARK, NAME_MARK
    from segmentation.book import ProfileBook
    from tests.tables import named_table

    engine = create_engine(db_url)
    config = _alembic()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0010")
        conn.execute(
            sa.text(
                "INSERT INTO decisions (incident_id, step, customer_id, created_at,"
                " message_kind, language, text, propensity)"
                " VALUES ('OLD', 1, 'c000001', :at, 'apology', 'en', 'Dear Ann, sorry.', 1.0)"
            ),
            {"at": datetime(2026, 11, 20, tzinfo=UTC)},
        )
    upgrade(engine)
    profiles = population.drop("latent_kind").with_columns(
        first_name=pl.when(pl.col("customer_id") == "c000002")
        .then(pl.lit(f"A{CODE_MARK}{NAME_MARK}B"))
        .otherwise(pl.col("first_name"))
    )
    book = ProfileBook(profiles, model)
    ledger = Ledger(engine)
    table = named_table()
    parts = Parts(
        book.select,
        book.unknown,
        ledger,
        lambda _kind: table,
        load_default_book(),
        EscalationPolicy(),
    )
    new = Incident(
        incident_id="NEW",
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 24, 7, tzinfo=UTC),
        facts=FlightFacts(delay_minutes=60, flight="MG1"),
    )
    decided = apply_update(parts, new, [f"c{i:06d}" for i in range(1, 41)], datetime.now(UTC))

    def texts() -> dict[tuple[str, str], str | None]:
        return {
            (i, c): t
            for i in ("OLD", "NEW")
            for c, t in ledger.decisions(i).select("customer_id", "text").rows()
        }

    read = texts()
    assert read[("OLD", "c000001")] == "Dear Ann, sorry."
    assert {c: t for (i, c), t in read.items() if i == "NEW"} == dict(
        decided.decisions.select("customer_id", "text").rows()
    )
    assert f"A{CODE_MARK}{NAME_MARK}B" in read[("NEW", "c000002")]

    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0012")
        stored = conn.execute(sa.text("SELECT incident_id, customer_id, text FROM decisions"))
        assert {(i, c): t for i, c, t in stored} == read
    columns = sa.inspect(engine)
    assert "first_name" not in {c["name"] for c in columns.get_columns("decisions")}
    assert "text_shell" not in {c["name"] for c in columns.get_columns("decision_reasons")}
    upgrade(engine)  # and back: every row has its own text now
    again = texts()
    engine.dispose()
    assert again == read


def test_incident_customers_are_counted_and_given_back_on_downgrade(db_url: str) -> None:
    """Migration 0012 counts each incident's customers, listed or decided, once; undone, every
    decided customer is listed in incident_customers again."""
    engine = create_engine(db_url)
    config = _alembic()
    listed = sa.text("SELECT customer_id FROM incident_customers ORDER BY customer_id")
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0011")
        at = datetime(2026, 11, 25, tzinfo=UTC)
        conn.execute(
            sa.text(
                "INSERT INTO incidents (incident_id, kind, occurred_at, facts, step, created_at,"
                " updated_at) VALUES (:i, 'flight_delay', :at, '{}', 1, :at, :at)"
            ),
            [{"i": "i", "at": at}, {"i": "quiet", "at": at}],
        )
        conn.execute(
            sa.text("INSERT INTO incident_customers (incident_id, customer_id) VALUES ('i', :c)"),
            [{"c": "a"}, {"c": "b"}],
        )
        for customer in ("b", "c"):
            _decided(conn, customer)
        command.upgrade(config, "0012")
        counts = dict(conn.execute(sa.text("SELECT incident_id, customers FROM incidents")).all())
        command.downgrade(config, "0011")
        after = conn.execute(listed).scalars().all()
    engine.dispose()
    assert counts == {"i": 3, "quiet": 0}
    assert after == ["a", "b", "c"]


def test_jobs_from_before_0015_are_found_stuck_and_everything_goes_back(db_url: str) -> None:
    """Migration 0015 gives running jobs a heartbeat (their last update) so a stuck one is
    found and cannot be resumed (no input); undone, jobs and buckets are as before."""
    from offers.ledger import jobs

    engine = create_engine(db_url)
    config = _alembic()
    old = datetime(2026, 11, 25, 7, tzinfo=UTC)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0014")
        conn.execute(
            sa.text(
                "INSERT INTO jobs (job_id, kind, subject, status, progress, message,"
                " created_at, updated_at) VALUES ('j1', 'incident', 'I1', 'running', 0.5,"
                " 'deciding', :at, :at)"
            ),
            {"at": old},
        )
    upgrade(engine)
    ledger = Ledger(engine)
    job = jobs.get(ledger, "j1")
    assert job is not None and job.heartbeat == old and job.attempts == 1
    assert jobs.stale(ledger, lease=30.0) == ["j1"]
    assert jobs.claim(ledger, "j1", "me", 30.0, "taken over") == (2, None)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0014")
        columns = {c["name"] for c in sa.inspect(conn).get_columns("jobs")}
        assert not sa.inspect(conn).has_table("rate_buckets")
    engine.dispose()
    assert columns == {
        "job_id",
        "kind",
        "subject",
        "status",
        "progress",
        "message",
        "result",
        "created_at",
        "updated_at",
    }


def test_stored_tables_lose_the_weight_rules_no_longer_have(db_url: str) -> None:
    """A version published with `weight` (never read, now refused) still loads after 0016."""
    from offers.catalog.tables import decode_table
    from offers.ledger.live import published_table

    engine = create_engine(db_url)
    config = _alembic()
    body = (
        'name = "t"\n[[perks]]\nid = "meal"\nkind = "meal"\nvalue = 10.0\ncost = 5.0\n'
        'title = { en = "a meal" }\n[[rules]]\nid = "r"\nperk = "meal"\nweight = 2.5\n'
    )
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0015")
        conn.execute(
            sa.text(
                "INSERT INTO offer_tables (name, version, body, published_at, published_by,"
                " reason, seq) VALUES ('t', 1, :body, :at, 'ana', 'r', 1)"
            ),
            {"body": body, "at": datetime(2026, 11, 23, tzinfo=UTC)},
        )
    upgrade(engine)
    found = published_table(Ledger(engine))
    engine.dispose()
    assert found is not None and "weight" not in found[2]
    assert decode_table(found[2]).rules[0].perk == "meal"
