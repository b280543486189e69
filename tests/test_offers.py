"""Offer tables and message templates: parsing, matching, rendering."""

from __future__ import annotations

import polars as pl
import pytest

from offers.catalog.matching import match
from offers.catalog.tables import TableError, dump_table, load_default_table, parse_table
from offers.messages.book import load_default_book, parse_book, render
from offers.messages.placeholders import TemplateError, compile_template
from offers.messages.sms import sms_segments
from segmentation.profiles import CHANNELS, LANGUAGES

PERK = (
    '[[perks]]\nid = "meal"\nkind = "meal"\nvalue = 10.0\ncost = 5.0\ntitle = { en = "a meal" }\n'
)


def frame(**columns: list[object]) -> pl.DataFrame:
    return pl.DataFrame(columns)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ('[[rules]]\nid = "r1"\nperk = "lounge"\n', "rule r1, field perk: unknown perk 'lounge'"),
        (
            '[[rules]]\nid = "r1"\nperk = "meal"\nwhen = { gender = ["female"] }\n',
            "rule r1, field when.gender: protected attribute",
        ),
        (
            '[[rules]]\nid = "r1"\nperk = "meal"\n[[rules]]\nid = "r1"\nperk = "meal"\n',
            "rule r1: duplicate rule id",
        ),
        ('[[rules]]\nid = "r1"\nperk = "meal"\nwhen = { step = { least = 2 } }\n', "least"),
        ('[[rules]]\nid = "r1"\n', "perk"),
    ],
)
def test_table_errors_name_table_rule_and_field(rules: str, message: str) -> None:
    with pytest.raises(TableError, match="t") as info:
        parse_table(f'name = "t"\n{PERK}{rules}')
    assert message in str(info.value)


def test_first_hit_and_priority_policies() -> None:
    rules = (
        '[[rules]]\nid = "low"\nperk = "meal"\npriority = 1\nwhen = { tier = ["gold"] }\n'
        '[[rules]]\nid = "high"\nperk = "meal"\npriority = 5\nwhen = { step = { min = 2 } }\n'
    )
    rows = frame(tier=["gold", "gold", "basic", "basic"], step=[1, 2, 2, 1])
    first = match(rows, parse_table(f'name = "t"\n{PERK}{rules}'))
    assert first["rule_id"].to_list() == ["low", "low", "high", None]
    by_priority = match(rows, parse_table(f'name = "t"\nhit_policy = "priority"\n{PERK}{rules}'))
    assert by_priority["rule_id"].to_list() == ["low", "high", "high", None]


def test_ranges_bools_and_missing_columns() -> None:
    table = parse_table(
        f'name = "t"\n{PERK}[[rules]]\nid = "r"\nperk = "meal"\n'
        "when = { business_share = { min = 0.5, max = 0.9 }, consent_marketing = true }\n"
    )
    rows = frame(business_share=[0.5, 0.95, 0.7, None], consent_marketing=[True, True, False, True])
    assert match(rows, table)["perk_id"].to_list() == ["meal", None, None, None]
    with pytest.raises(TableError, match="unknown columns"):
        match(frame(tier=["gold"]), table)


def test_default_table_and_messages_load() -> None:
    table = load_default_table()
    assert {p.kind for p in table.perks} >= {
        "lounge_pass",
        "discount_percent",
        "meal",
        "miles",
        "credit",
    }
    assert all(set(p.title) == set(LANGUAGES) for p in table.perks)
    assert load_default_book().templates


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("Hi {first_name.__class__}", "only plain"),
        ("Hi {first_name!r}", "only plain"),
        ("Hi {first_name:>20}", "only plain"),
        ("Hi {password}", "unknown variable {password}"),
        ("Hi {0}", "only plain"),
        ("Hi {first_name", "expected '}'"),
    ],
)
def test_templates_are_sandboxed(text: str, error: str) -> None:
    with pytest.raises(TemplateError, match="template") as info:
        compile_template(text)
    assert error in str(info.value)


def _decision_rows() -> pl.DataFrame:
    rows = [(lang, ch) for lang in LANGUAGES for ch in CHANNELS]
    return pl.DataFrame(
        {
            "language": pl.Series([r[0] for r in rows], dtype=pl.Enum(LANGUAGES)),
            "channel": [r[1] for r in rows],
            "message_kind": ["apology"] * len(rows),
            "first_name": ["Mei"] * len(rows),
            "flight": ["MG123"] * len(rows),
            "delay_minutes": [95] * len(rows),
            "perk_line": [""] * len(rows),
        }
    )


def test_every_language_and_channel_renders_without_leftover_placeholders() -> None:
    out = render(_decision_rows(), load_default_book(), "flight_delay", "message_kind", "text")
    assert out["text"].null_count() == 0
    assert not out["text"].str.contains(r"[{}]").any()
    assert out["text"].str.contains("MG123").all() and out["text"].str.contains("95").all()
    by_lang = dict(out.group_by("language").agg(pl.col("text").first()).iter_rows())
    assert (
        "sorry" in by_lang["en"] and "延誤" in by_lang["zh-Hant"] and "延误" in by_lang["zh-Hans"]
    )
    sms = out.filter(pl.col("channel") == "sms")["text"].to_list()
    assert all(sms_segments(t) <= 2 for t in sms)


def test_missing_language_falls_back_and_says_so() -> None:
    book = parse_book(
        '[[templates]]\nincident = "flight_delay"\nkind = "apology"\nlanguage = "zh-Hans"\n'
        'text = "抱歉 {flight}"\n'
        '[[templates]]\nincident = "flight_delay"\nkind = "apology"\nlanguage = "en"\n'
        'text = "Sorry {flight}"\n'
    )
    out = render(_decision_rows(), book, "flight_delay", "message_kind", "text")
    used = dict(
        out.select(pl.col("language").cast(pl.String), "text_language").unique().iter_rows()
    )
    assert used == {"en": "en", "zh-Hans": "zh-Hans", "zh-Hant": "zh-Hans"}


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("延" * 70, 1),
        ("延" * 71, 2),
        ("延" * 134, 2),
        ("延" * 135, 3),
    ],
)
def test_sms_segment_counting(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_fallback_rules_are_tried_last_whatever_their_place_or_priority() -> None:
    rules = (
        '[[rules]]\nid = "fb"\nperk = "meal"\nfallback = true\npriority = 99\n'
        '[[rules]]\nid = "gold"\nperk = "meal"\nwhen = { tier = "gold" }\n'
    )
    rows = frame(tier=["gold", "basic"])
    for policy in ("first", "priority"):
        table = parse_table(f'name = "t"\nhit_policy = "{policy}"\n{PERK}{rules}')
        assert match(rows, table)["rule_id"].to_list() == ["gold", "fb"]


def test_single_values_are_one_item_lists_and_stock_is_modelled() -> None:
    table = parse_table(
        f'name = "t"\n{PERK}stock = [{{ airport = "TPE", per_day = 40 }}]\n'
        '[[rules]]\nid = "r"\nperk = "meal"\nwhen = { tier = "gold" }\n'
    )
    assert table.rules[0].when == {"tier": ["gold"]}
    assert [(s.airport, s.per_day) for s in table.perks[0].stock] == [("TPE", 40)]
    with pytest.raises(TableError, match="perk meal, field stock"):
        parse_table(f'name = "t"\n{PERK}stock = [{{ airport = "taipei", per_day = 40 }}]\n')


def test_the_default_table_dumps_to_equal_toml() -> None:
    table = load_default_table()
    assert parse_table(dump_table(table)) == table
    assert table.rules[-1].fallback
