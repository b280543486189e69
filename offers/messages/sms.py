"""What a text costs as SMS: its alphabet, its length in that alphabet's units, its segments.

Counting follows GSM 03.38 and the UCS-2 fallback, so a template's worst case can be checked
before any customer gets a third segment; the worst-case values live here too.
"""

from __future__ import annotations

from typing import Literal

import msgspec
import polars as pl

from offers.messages.placeholders import fill_text
from segmentation.profiles import MAX_FIRST_NAME

__all__ = [
    "GSM_ONLY",
    "SMS_MAX_SEGMENTS",
    "WORST_CASE",
    "SmsInfo",
    "sms_column_counts",
    "sms_counts",
    "sms_fits",
    "sms_info",
    "sms_segments",
    "sms_units",
    "worst_case",
]

SMS_MAX_SEGMENTS = 2

#: Worst-case lengths used to check SMS templates: the longest value each variable takes.
#: `perk_title` is checked with every title of the table (the longest decides);
#: `perk_line` is the perk_line template rendered with these values. Names are assumed
#: to be written in the template's alphabet (a Chinese name turns GSM-7 into UCS-2), and
#: as long as a profile import lets them be.
WORST_CASE: dict[str, str] = {
    "first_name": "x" * MAX_FIRST_NAME,
    "flight": "XX9999",
    "delay_minutes": "9999",
    "perk_code": "X" * 8,
    "valid_until": "2026-12-31",
    "subject": "X" * 16,
    "rights": "APPR, EU261, UK261, US-DOT",
    "reference": "X" * 16,
}


class SmsInfo(msgspec.Struct, frozen=True, kw_only=True):
    """How a text travels as SMS: alphabet, length in its units, and segments."""

    encoding: Literal["GSM-7", "UCS-2"]
    units: int
    segments: int


def sms_info(text: str) -> SmsInfo:
    """GSM-7: 160 septets a segment (153 joined), extension characters take two; else
    UCS-2: 70 UTF-16 units (67 joined), so an emoji counts twice."""
    gsm, chars, ext, astral = sms_counts(text)
    if gsm:
        units = chars + ext
        single, joined, encoding = 160, 153, "GSM-7"
    else:
        units = chars + astral
        single, joined, encoding = 70, 67, "UCS-2"
    segments = 1 if units <= single else -(-units // joined)
    return SmsInfo(encoding=encoding, units=units, segments=segments)  # type: ignore[arg-type]


def sms_counts(text: str) -> tuple[bool, int, int, int]:
    """Whether `text` is all GSM-7, its characters, its extension characters (two septets
    each) and its characters outside the BMP (two UTF-16 units each): parts that add up,
    so a text's count is the sum of its pieces'."""
    gsm = all(ch in _GSM7 or ch in _GSM7_EXT for ch in text)
    ext = sum(ch in _GSM7_EXT for ch in text)
    return gsm, len(text), ext, sum(ord(ch) > 0xFFFF for ch in text)


def sms_segments(text: str) -> int:
    """How many SMS a text takes (see sms_info)."""
    return sms_info(text).segments


def sms_units(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """`sms_info` for a column: whether each text is GSM-7, and its length in units."""
    gsm, chars, ext, astral = sms_column_counts(text)
    return gsm, chars + pl.when(gsm).then(ext).otherwise(astral)


def sms_column_counts(text: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr, pl.Expr]:
    """`sms_counts` for a column (Int64 counts)."""
    gsm = text.str.contains(GSM_ONLY)
    ext = text.str.count_matches(f"[{_class(_GSM7_EXT)}]").cast(pl.Int64)
    astral = text.str.count_matches("[\\x{10000}-\\x{10FFFF}]").cast(pl.Int64)
    return gsm, text.str.len_chars().cast(pl.Int64), ext, astral


def sms_fits(text: pl.Expr, max_segments: int = SMS_MAX_SEGMENTS) -> pl.Expr:
    """How many units each text is over `max_segments` SMS (0 where it fits; null text: 0):
    a text that leaves GSM-7 anywhere, a name like Zoë or 陈 included, counts as UCS-2."""
    gsm, units = sms_units(text)
    one = max_segments == 1
    limit = (
        pl.when(gsm)
        .then(160 if one else 153 * max_segments)
        .otherwise(70 if one else 67 * max_segments)
    )
    return (units - limit).clip(lower_bound=0).fill_null(0)


def _class(chars: set[str]) -> str:
    """`chars` as the inside of a regex character class, every one escaped."""
    return "".join(f"\\x{{{ord(c):X}}}" for c in sorted(chars))


def worst_case(
    text: str, perk_line: str | None, title: str, rights_line: str | None = None
) -> SmsInfo:
    """A template as SMS with every variable at its WORST_CASE value and the perk `title`;
    `perk_line` and `rights_line` are those templates, filled with the same values."""
    values = {**WORST_CASE, "perk_title": title}
    values["perk_line"] = fill_text(perk_line, values) if perk_line else ""
    values["rights_line"] = fill_text(rights_line, values) if rights_line else ""
    return sms_info(fill_text(text, values))


_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = set("^{}\\[~]|€\f")

#: A pattern that holds for a text written in GSM-7 alone (its extension table included).
GSM_ONLY = f"^[{_class(_GSM7 | _GSM7_EXT)}]*$"
