"""Offer-table validation: every finding, located by table, rule (or perk) and field."""

from __future__ import annotations

import pytest

from offers.catalog.fields import Range
from offers.catalog.tables import TableError, decode_table, load_default_table
from offers.catalog.validate import Checks, Finding, contains, default_columns, validate

SEGMENTS = frozenset({"road-warrior", "duty-free-shopper", "leisure-family"})
TITLES = 'title = { en = "a meal", "zh-Hans" = "餐券", "zh-Hant" = "餐券" }'
HEAD = (
    'name = "t"\n'
    f'[[perks]]\nid = "meal"\nkind = "meal"\nvalue = 10.0\ncost = 5.0\n{TITLES}\n'
    f'[[perks]]\nid = "lounge"\nkind = "lounge_pass"\nvalue = 40.0\ncost = 12.0\n{TITLES}\n'
)
FALLBACK = '[[rules]]\nid = "fb"\nperk = "meal"\nfallback = true\n'
LOUNGE = '[[rules]]\nid = "l"\nperk = "lounge"\nwhen = { segment = "road-warrior" }\n'


def findings(rules: str, head: str = HEAD) -> list[Finding]:
    table = decode_table(head + rules)
    return validate(table, segment_names=SEGMENTS)


def located(found: list[Finding]) -> set[tuple[str, str, str | None, str | None, str | None]]:
    return {(f.severity, f.code, f.rule, f.perk, f.field) for f in found}


def test_a_clean_table_and_the_default_table_have_no_findings() -> None:
    assert findings(LOUNGE + FALLBACK) == []
    names = SEGMENTS | {"premium-business"}
    assert validate(load_default_table(), segment_names=names) == []


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            '[[rules]]\nid = "r"\nperk = "spa"\n' + LOUNGE,
            ("error", "unknown-perk", "r", None, "perk"),
        ),
        (
            '[[rules]]\nid = "r"\nperk = "meal"\nwhen = { segment = ["road-warrior", "ghosts"] }\n',
            ("error", "unknown-segment", "r", None, "when.segment"),
        ),
        (
            '[[rules]]\nid = "r"\nperk = "meal"\nwhen = { gender = ["female"] }\n',
            ("error", "protected", "r", None, "when.gender"),
        ),
        (
            '[[rules]]\nid = "r"\nperk = "meal"\nwhen = { birth_year = { max = 1960 } }\n',
            ("error", "protected", "r", None, "when.birth_year"),
        ),
        (
            '[[rules]]\nid = "r"\nperk = "meal"\nwhen = { shoe_size = { min = 44 } }\n',
            ("error", "unknown-column", "r", None, "when.shoe_size"),
        ),
        (
            '[[rules]]\nid = "r"\nperk = "meal"\nwhen = { step = { min = 3, max = 2 } }\n',
            ("error", "never-matches", "r", None, "when.step"),
        ),
        (LOUNGE + LOUNGE, ("error", "duplicate-rule", "l", None, "id")),
        (
            '[[rules]]\nid = "fb"\nperk = "meal"\nfallback = true\nwhen = { tier = "gold" }\n',
            ("error", "fallback-conditions", "fb", None, "when"),
        ),
        (
            FALLBACK + '[[rules]]\nid = "fb2"\nperk = "meal"\nfallback = true\n',
            ("error", "second-fallback", "fb2", None, "fallback"),
        ),
        ("", ("warning", "unused-perk", None, "lounge", None)),
        (
            '[[rules]]\nid = "r"\nperk = "meal"\nalternatives = ["spa"]\n',
            ("error", "unknown-perk", "r", None, "alternatives"),
        ),
        (
            '[[rules]]\nid = "r"\nperk = "meal"\nalternatives = ["meal"]\n',
            ("error", "alternative-is-perk", "r", None, "alternatives"),
        ),
        (
            '[[rules]]\nid = "r"\nperk = "meal"\nalternatives = ["lounge", "lounge"]\n',
            ("error", "duplicate-alternative", "r", None, "alternatives"),
        ),
        (
            '[[rules]]\nid = "r"\nperk = "meal"\nalternatives = ["lounge"]\n',
            ("warning", "alternative-value", "r", None, "alternatives"),
        ),
    ],
)
def test_each_finding_names_its_rule_and_field(
    rules: str, expected: tuple[str, str, str | None, str | None, str | None]
) -> None:
    assert expected in located(findings(rules))


def test_perk_findings_name_the_perk_and_field() -> None:
    head = (
        'name = "t"\n[[perks]]\nid = "meal"\nkind = "meal"\nvalue = 1.0\ncost = 1.0\n'
        'title = { en = "a meal" }\nstock = [{ airport = "TPE", per_day = 4 }, '
        '{ airport = "TPE", per_day = 5 }]\n'
    )
    got = located(findings(FALLBACK, head))
    assert ("warning", "missing-title", None, "meal", "title.zh-Hant") in got
    assert ("warning", "missing-title", None, "meal", "title.zh-Hans") in got
    assert ("error", "duplicate-stock", None, "meal", "stock") in got


@pytest.mark.parametrize(
    ("earlier", "later", "shadowed"),
    [
        # values: a superset or equal set shadows
        ('{ segment = ["road-warrior", "leisure-family"] }', '{ segment = "road-warrior" }', True),
        ('{ segment = "road-warrior" }', '{ segment = "road-warrior" }', True),
        ('{ segment = "road-warrior" }', '{ segment = ["road-warrior", "leisure-family"] }', False),
        # fewer conditions are weaker
        ('{ segment = "road-warrior" }', '{ segment = "road-warrior", step = { min = 2 } }', True),
        ('{ segment = "road-warrior", step = { min = 2 } }', '{ segment = "road-warrior" }', False),
        ("{}", '{ tier = "gold" }', True),
        # ranges: a wider range shadows, open sides are infinite
        ("{ step = { min = 2 } }", "{ step = { min = 3, max = 5 } }", True),
        ("{ step = { min = 2, max = 4 } }", "{ step = { min = 3, max = 5 } }", False),
        ("{ step = { max = 4 } }", "{ step = { min = 3 } }", False),
        ("{ delay_minutes = { min = 30 } }", "{ delay_minutes = { min = 30 } }", True),
        # a range holds a list of numbers inside it
        ("{ step = { min = 1, max = 3 } }", '{ step = ["1", "2"] }', True),
        ("{ step = { min = 1, max = 3 } }", '{ step = ["2", "4"] }', False),
        # booleans only shadow the same boolean
        ("{ consent_marketing = true }", "{ consent_marketing = true }", True),
        ("{ consent_marketing = true }", "{ consent_marketing = false }", False),
        # different columns never shadow
        ('{ tier = "gold" }', '{ segment = "road-warrior" }', False),
    ],
)
def test_shadowing_is_decided_over_sets_and_ranges(
    earlier: str, later: str, shadowed: bool
) -> None:
    rules = (
        f'[[rules]]\nid = "early"\nperk = "meal"\nwhen = {earlier}\n'
        f'[[rules]]\nid = "late"\nperk = "lounge"\nwhen = {later}\n' + FALLBACK
    )
    got = [f for f in findings(rules) if f.code == "shadowed" and f.rule == "late"]
    assert [(f.rule, f.field) for f in got] == ([("late", "when")] if shadowed else [])
    if shadowed:
        assert "rule early comes first" in got[0].message


def test_shadowing_follows_priority_order_and_keeps_fallback_last() -> None:
    rules = (
        '[[rules]]\nid = "narrow"\nperk = "lounge"\npriority = 1\nwhen = { tier = "gold" }\n'
        '[[rules]]\nid = "wide"\nperk = "meal"\npriority = 5\n'
        'when = { tier = ["gold", "silver"] }\n' + FALLBACK
    )
    assert [f.rule for f in findings(rules) if f.code == "shadowed"] == []
    by_priority = decode_table(
        HEAD.replace('name = "t"', 'name = "t"\nhit_policy = "priority"') + rules
    )
    shadowed = [f.rule for f in validate(by_priority) if f.code == "shadowed"]
    assert shadowed == ["narrow"]


def test_uncovered_segment_steps_are_warnings() -> None:
    rules = (
        '[[rules]]\nid = "l"\nperk = "lounge"\nwhen = { segment = "road-warrior" }\n'
        '[[rules]]\nid = "s"\nperk = "meal"\nwhen = { segment = "duty-free-shopper", '
        "step = { max = 2 } }\n"
        '[[rules]]\nid = "g"\nperk = "meal"\nwhen = { segment = "leisure-family", tier = "gold" }\n'
    )
    got = {f.message.split(":")[0]: f for f in findings(rules) if f.code == "uncovered"}
    assert set(got) == {
        "segment duty-free-shopper at step 3, 4, 5, 6",
        "segment leisure-family at step 1, 2, 3, 4, 5, 6",
    }
    assert all(f.severity == "warning" and f.field == "when.segment" for f in got.values())
    table = decode_table(HEAD + rules)
    short = Checks(segment_names=SEGMENTS, max_step=3).run(table)
    assert any("at step 3:" in f.message for f in short if f.code == "uncovered")
    assert not any(f.code == "uncovered" for f in findings(rules + FALLBACK))


def test_known_columns_cover_profiles_and_incident_facts() -> None:
    known = default_columns()
    assert {"tier", "business_share", "segment", "step", "delay_minutes", "kind"} <= known
    assert {"channel", "language", "airport", "distance_km", "cause"} <= known
    assert not {"gender", "birth_year"} & known


def test_findings_read_as_located_sentences() -> None:
    found = findings('[[rules]]\nid = "r"\nperk = "spa"\n')
    assert "error: table t, rule r, field perk: unknown perk 'spa'" in [str(f) for f in found]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ('[[rules]]\nid = "r"\nperk = "meal"\nwhen = { step = {} }\n', "rule r, field when.step"),
        (
            '[[rules]]\nid = "r"\nperk = "meal"\nwhen = { tier = "a,b" }\n',
            "rule r, field when.tier",
        ),
        ('[[rules]]\nid = "r"\nperk = "meal"\nwhen = { tier = [] }\n', "rule r, field when.tier"),
        ('[[rules]]\nid = "r"\nperk = "meal"\npriority = "high"\n', "rule r, field priority"),
        ('[[rules]]\nid = "r"\nperk = "meal"\nweight = 2\n', "rule r, field weight: rules have no"),
        (
            '[[rules]]\nid = "r"\nperk = "meal"\nalternatives = "lounge"\n',
            "rule r, field alternatives",
        ),
        ('[[rules]]\nid = "r"\nperk = "meal"\nwhen = { "a-b" = true }\n', "field when: key"),
        (
            '[[perks]]\nid = "x"\nkind = "meal"\nvalue = 1\ncost = 1\ntitle = { "e n" = "x" }\n',
            "perk x",
        ),
    ],
)
def test_unreadable_tables_are_refused_naming_rule_and_field(rules: str, message: str) -> None:
    with pytest.raises(TableError) as info:
        decode_table(HEAD + rules)
    assert message in str(info.value)


def test_alternatives_are_the_way_to_offer_a_choice_and_the_error_says_so() -> None:
    """Two rules with the same conditions: the second never fires, and the finding tells
    marketing to list its perk among the first rule's alternatives, which publishes."""
    miles = 'title = { en = "miles", "zh-Hans" = "里程", "zh-Hant" = "里程" }'
    head = HEAD + f'[[perks]]\nid = "miles"\nkind = "miles"\nvalue = 10.0\ncost = 3.0\n{miles}\n'
    family = 'when = { segment = "leisure-family" }\n'
    twice = (
        f'[[rules]]\nid = "family-meal"\nperk = "meal"\n{family}'
        f'[[rules]]\nid = "family-miles"\nperk = "miles"\n{family}'
    )
    (shadowed,) = [f for f in findings(twice + LOUNGE + FALLBACK, head) if f.code == "shadowed"]
    assert shadowed.rule == "family-miles"
    assert "list miles in the alternatives of rule family-meal" in shadowed.message
    listed = f'[[rules]]\nid = "family"\nperk = "meal"\nalternatives = ["miles"]\n{family}'
    assert findings(listed + LOUNGE + FALLBACK, head) == []


def test_contains_is_conservative_where_unsure() -> None:
    assert not contains(["2"], Range(min=2, max=2))
    assert contains(Range(min=0), Range(min=3, max=1))  # an empty condition is inside anything
