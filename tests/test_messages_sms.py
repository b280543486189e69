"""Message templates: SMS segment counting, worst-case length refusal, previews everywhere."""

from __future__ import annotations

import polars as pl
import pytest

from offers.catalog.tables import load_default_table
from offers.messages.book import (
    MESSAGE_KINDS,
    check_book,
    load_default_book,
    parse_book,
    preview,
    sample_values,
    validate_book,
)
from offers.messages.placeholders import TemplateError
from offers.messages.sms import WORST_CASE, sms_fits, sms_info, sms_units
from segmentation.profiles import CHANNELS, LANGUAGES

TITLES = [dict(p.title) for p in load_default_table().perks]


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 69 + "延", "UCS-2", 70, 1),  # one Chinese character makes the whole text UCS-2
        ("延" * 71, "UCS-2", 71, 2),
        ("延" * 134, "UCS-2", 134, 2),
        ("延" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, "UCS-2", 72, 2),
    ],
)
def test_sms_segments(text: str, encoding: str, units: int, segments: int) -> None:
    info = sms_info(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)
    # the renderer's vectorized count agrees, so a rendered SMS is counted as it travels
    gsm, counted = sms_units(pl.lit(text, pl.String))
    assert pl.select(gsm.alias("gsm"), counted.alias("units")).row(0) == (
        encoding == "GSM-7",
        units,
    )


@pytest.mark.parametrize(
    ("name", "encoding", "over"),
    [
        ("Mei", "GSM-7", 0),
        ("Zoë", "UCS-2", 0),  # ë is not GSM-7: the whole text becomes UCS-2
        ("Zoë" * 16, "UCS-2", 45),  # 179 units: 45 past two UCS-2 segments
        ("陈" * 50, "UCS-2", 47),
    ],
)
def test_a_name_outside_gsm7_makes_a_gsm7_template_ucs2(
    name: str, encoding: str, over: int
) -> None:
    text = name + ", " + "a" * 129  # 134 units with a three-letter name
    assert sms_info(text).encoding == encoding
    assert pl.select(sms_fits(pl.lit(text))).item() == over


def book(text: str, perk_line: str = " {perk_title}") -> str:
    return (
        '[[templates]]\nincident = "flight_delay"\nkind = "apology"\nlanguage = "en"\n'
        f'channel = "sms"\ntext = "{text}"\nnameless = "{text.replace("{first_name}", "")}"\n'
        '[[templates]]\nincident = "flight_delay"\nkind = "perk_line"\nlanguage = "en"\n'
        f'text = "{perk_line}"\n'
    )


def test_the_default_book_fits_two_segments_with_every_perk() -> None:
    assert validate_book(load_default_book(), TITLES) == []
    check_book(load_default_book(), TITLES)


def test_worst_case_lengths_refuse_a_third_segment() -> None:
    # 50-char name + 256 literal GSM characters = 306: exactly two segments.
    fits = parse_book(book("{first_name}" + "a" * 256, perk_line=""))
    assert validate_book(fits) == []
    over = parse_book(book("{first_name}" + "a" * 257, perk_line=""))
    (finding,) = validate_book(over)
    assert (finding.severity, finding.template, finding.language) == (
        "error",
        "flight_delay/apology/en/sms",
        "en, zh-Hans, zh-Hant",  # the English text serves every language without its own
    )
    assert "307 GSM-7 characters take 3 SMS segments" in finding.message
    with pytest.raises(TemplateError, match="flight_delay/apology/en/sms"):
        check_book(over)


def test_the_longest_perk_title_and_its_alphabet_decide() -> None:
    text = "{first_name}" + "a" * 120 + "{perk_line}"
    short = [{"en": "a meal"}]
    assert validate_book(parse_book(book(text)), short) == []
    chinese = [{"en": "a meal"}, {"en": "貴賓室"}]  # forces UCS-2: 70/67 a segment
    (finding,) = validate_book(parse_book(book(text)), chinese)
    assert "UCS-2" in finding.message


def test_zh_hant_customers_are_checked_with_their_titles_in_the_fallback_text() -> None:
    text = (
        '[[templates]]\nincident = "flight_delay"\nkind = "apology"\nlanguage = "zh-Hans"\n'
        'channel = "sms"\ntext = "{first_name}{perk_title}"\nnameless = "{perk_title}"\n'
    )
    titles = [{"en": "x", "zh-Hans": "短", "zh-Hant": "長" * 200}]
    found = validate_book(parse_book(text), titles)
    assert [(f.template, f.language) for f in found] == [
        ("flight_delay/apology/zh-Hans/sms", "zh-Hant")
    ]


def test_worst_case_values_are_documented_lengths() -> None:
    lengths = {k: len(v) for k, v in WORST_CASE.items()}
    assert lengths == {
        "first_name": 50,
        "flight": 6,
        "delay_minutes": 4,
        "perk_code": 8,
        "valid_until": 10,
        "subject": 16,
        "reference": 16,
        "rights": 26,
    }


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("kind", [k for k in MESSAGE_KINDS if not k.endswith("_line")])
def test_every_kind_language_and_channel_previews(kind: str, language: str, channel: str) -> None:
    perk = load_default_table().perk("lounge-1h")
    values = sample_values(perk_title=perk.title[language], valid_until=None)
    shown = preview(
        load_default_book(),
        incident="flight_delay",
        kind=kind,
        language=language,
        channel=channel,
        values=values,
    )
    assert shown.text is not None and "MG123" in shown.text
    assert "{" not in shown.text and shown.text_language == language and not shown.fallback
    if kind in ("apology", "update"):
        assert perk.title[language] in shown.text
    assert (shown.sms is not None) == (channel == "sms")
    if shown.sms is not None:
        assert shown.sms.segments <= 2


def test_preview_falls_back_and_says_so() -> None:
    only_en = parse_book(book("Sorry {first_name}"))
    shown = preview(
        only_en,
        incident="flight_delay",
        kind="apology",
        language="zh-Hant",
        channel="sms",
        values=sample_values(perk_title=None, valid_until=None),
    )
    assert (shown.text, shown.text_language, shown.fallback) == ("Sorry Mei", "en", True)
    missing = preview(
        only_en,
        incident="flight_delay",
        kind="update",
        language="en",
        channel="sms",
        values={},
    )
    assert missing.text is None
