"""Draft -> validate -> publish -> versions -> diff -> rollback, on SQLite and PostgreSQL,
and the `makegood offers` / `makegood messages` commands over a real data folder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from api.cli import cli
from api.cli import messages as cli_messages
from api.settings import Settings
from offers.catalog.tables import DEFAULTS, OfferTable, decode_table, dump_table, load_default_table
from offers.catalog.validate import Checks
from offers.ledger.db import create_engine, upgrade
from offers.ledger.live import published_table
from offers.ledger.schema import offer_table_drafts
from offers.ledger.store import Ledger
from offers.ledger.versions import NotFound, PublishRefused, Store

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SEGMENTS = frozenset({"road-warrior", "premium-business", "duty-free-shopper", "leisure-family"})
CHECKS = Checks(segment_names=SEGMENTS)
DEFAULT_BODY = (DEFAULTS / "offers.toml").read_text(encoding="utf-8")


def with_rule_perk(table: OfferTable, rule_id: str, perk: str) -> OfferTable:
    rules = [msgspec.structs.replace(r, perk=perk) if r.id == rule_id else r for r in table.rules]
    return msgspec.structs.replace(table, rules=rules)


@pytest.fixture
def store(ledger: Ledger) -> Store:
    return Store(ledger.engine)


def test_draft_publish_versions_diff_rollback(store: Store, ledger: Ledger) -> None:
    table = load_default_table()
    first = store.publish(
        table.name, by="ana", reason="launch", now=T0, checks=CHECKS, body=DEFAULT_BODY
    )
    assert (first.info.version, first.info.published_by, first.info.reason) == (1, "ana", "launch")

    changed = with_rule_perk(table, "biz-lounge", "meal-12")
    draft = store.save_draft(changed, "bo", T0 + timedelta(minutes=1))
    assert draft.based_on == 1 and store.draft(table.name) is not None
    assert [s.draft for s in store.tables()] == [True]
    assert [str(c) for c in store.diff(table.name, 1, "draft")] == [
        "changed: rule biz-lounge, field perk: lounge-1h -> meal-12"
    ]
    second = store.publish(
        table.name, by="bo", reason="lounges full", now=T0 + timedelta(hours=1), checks=CHECKS
    )
    assert second.info.version == 2
    assert store.draft(table.name) is None  # published drafts are cleared in the same transaction
    assert published_table(ledger) == (table.name, 2, dump_table(changed))  # the engine's view

    back = store.rollback(
        table.name, 1, by="ana", reason="complaints", now=T0 + timedelta(hours=2), checks=CHECKS
    )
    assert (back.info.version, back.info.reason) == (3, "rollback to v1: complaints")
    assert store.table(table.name, "live") == table
    assert published_table(ledger) == (table.name, 3, DEFAULT_BODY)
    history = store.versions(table.name)
    assert [(v.version, v.published_by) for v in history] == [(1, "ana"), (2, "bo"), (3, "ana")]
    assert all(v.published_at.tzinfo is not None for v in history)
    assert store.diff(table.name, 1, 3) == []
    summary = store.tables()[0]
    assert summary.live and summary.latest is not None and summary.latest.version == 3


def test_the_last_publication_is_live_whatever_the_publishers_clock(
    store: Store, ledger: Ledger
) -> None:
    """A rollback from a worker whose clock runs an hour behind still takes effect."""
    table = load_default_table()
    store.publish(table.name, by="ana", reason="launch", now=T0, checks=CHECKS, body=DEFAULT_BODY)
    changed = dump_table(with_rule_perk(table, "biz-lounge", "meal-12"))
    store.publish(table.name, by="bo", reason="b", now=T0, checks=CHECKS, body=changed)
    back = store.rollback(
        table.name, 1, by="cy", reason="oops", now=T0 - timedelta(hours=1), checks=CHECKS
    )
    assert back.info.version == 3
    live = store.live()
    assert live is not None and live.info.version == 3 and live.body == DEFAULT_BODY
    assert published_table(ledger) == (table.name, 3, DEFAULT_BODY)


def test_publish_with_errors_writes_nothing(store: Store) -> None:
    table = load_default_table()
    store.publish(table.name, by="ana", reason="launch", now=T0, checks=CHECKS, body=DEFAULT_BODY)
    bad = with_rule_perk(table, "biz-lounge", "spa-day")
    store.save_draft(bad, "bo", T0)
    with pytest.raises(PublishRefused) as info:
        store.publish(table.name, by="bo", reason="oops", now=T0, checks=CHECKS)
    assert "rule biz-lounge, field perk: unknown perk 'spa-day'" in str(info.value)
    assert [v.version for v in store.versions(table.name)] == [1]
    assert store.draft(table.name) is not None  # the draft stays for fixing


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.version("flight-delay", 9), "no version 9"),
        (lambda s: s.body("flight-delay", "draft"), "has no draft"),
        (lambda s: s.body("nope", "live"), "nope is not published"),
        (
            lambda s: s.rollback("flight-delay", 7, by="a", reason="r", now=T0, checks=CHECKS),
            "no version 7",
        ),
    ],
)
def test_missing_versions_and_drafts_are_named(store: Store, call: object, error: str) -> None:
    store.publish("flight-delay", by="a", reason="r", now=T0, checks=CHECKS, body=DEFAULT_BODY)
    with pytest.raises(NotFound, match=error):
        call(store)  # type: ignore[operator]


def test_a_body_naming_another_table_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="field name"):
        store.publish("other", by="a", reason="r", now=T0, checks=CHECKS, body=DEFAULT_BODY)


def test_migration_creates_the_drafts_table_as_the_schema_says(ledger: Ledger) -> None:
    columns = {c["name"] for c in sa.inspect(ledger.engine).get_columns("offer_table_drafts")}
    assert columns == set(offer_table_drafts.c.keys())
    upgrade(ledger.engine)  # idempotent


# --- the command line --------------------------------------------------------------


def run(data: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--data", str(data), *args], terminal_width=200)
    assert result.exit_code == code, result.output
    return result.output


def test_marketers_tour_export_edit_import_diff_publish_rollback(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    engine = create_engine(Settings(data_dir=data).db_url)
    upgrade(engine)
    Store(engine).publish(
        "flight-delay", by="boot", reason="default", now=T0, checks=Checks(), body=DEFAULT_BODY
    )
    engine.dispose()

    sheet = tmp_path / "t.xlsx"
    assert "wrote" in run(data, "offers", "export", "-o", str(sheet))
    import openpyxl

    book = openpyxl.load_workbook(sheet)
    rules = book["rules"]
    header = [c.value for c in rules[1]]
    for row in rules.iter_rows(min_row=2):
        if row[header.index("id")].value == "biz-lounge":
            row[header.index("perk")].value = "meal-12"
    book.save(sheet)

    assert "errors" not in run(data, "offers", "validate", str(sheet)).split("0 errors")[0][-5:]
    assert "draft of flight-delay saved" in run(data, "offers", "import", str(sheet))
    diff = run(data, "offers", "diff", "v1", "draft")
    assert "biz-lounge" in diff and "lounge-1h" in diff and "meal-12" in diff
    out = run(
        data,
        "offers",
        "publish",
        "--draft",
        "flight-delay",
        "--reason",
        "lounges full",
        "--by",
        "mei",
    )
    assert "published flight-delay v2 by mei: lounges full" in out
    assert "rollback to v1" in run(data, "offers", "rollback", "v1", "--reason", "undo")
    versions = run(data, "offers", "versions")
    assert "v3" in versions and "rollback to v1: undo" in versions

    toml = tmp_path / "back.toml"
    run(data, "offers", "export", "--version", "2", "-o", str(toml))
    assert (
        next(r for r in decode_table(toml.read_text()).rules if r.id == "biz-lounge").perk
        == "meal-12"
    )
    assert "no changes" in run(data, "offers", "diff", str(toml), "v2")
    csv = tmp_path / "t.csv"
    run(data, "offers", "export", "-o", str(csv))
    assert (tmp_path / "t.perks.csv").exists()
    assert "published flight-delay v4" in run(
        data, "offers", "publish", str(csv), "--reason", "from csv"
    )


def test_validate_prints_findings_and_exits_1_on_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(DEFAULT_BODY.replace('perk = "lounge-1h"', 'perk = "spa-day"'))
    out = run(tmp_path / "data", "offers", "validate", str(bad), code=1)
    assert "unknown perk 'spa-day'" in out and "biz-lounge" in out and "1 errors" in out
    refused = run(tmp_path / "data", "offers", "publish", str(bad), "--reason", "x", code=1)
    assert "not published" in refused


@pytest.mark.parametrize("language", ["en", "zh-Hans", "zh-Hant"])
def test_messages_preview(tmp_path: Path, language: str) -> None:
    result = CliRunner().invoke(
        cli_messages.group,
        [
            "preview",
            "--lang",
            language,
            "--channel",
            "sms",
            "--kind",
            "apology",
            "--perk",
            "lounge-1h",
        ],
        obj=Settings(data_dir=tmp_path),
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    title = load_default_table().perk("lounge-1h").title[language]
    assert title in result.output and "MG123" in result.output
    assert f"[{language}, sms]" in result.output and "SMS" in result.output


def test_messages_validate_and_unknown_perk(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    ok = CliRunner().invoke(cli_messages.group, ["validate"], obj=settings)
    assert ok.exit_code == 0 and "no SMS over two segments" in ok.output
    bad = CliRunner().invoke(cli_messages.group, ["preview", "--perk", "spa"], obj=settings)
    assert bad.exit_code == 2 and "unknown perk 'spa'" in bad.output
