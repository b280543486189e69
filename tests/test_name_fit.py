"""Names give way to the SMS budget exactly as the rule says, row for row.

The rule, spelled out the slow way per row with `sms_info`: a name that pushes an SMS past
two segments is cut by as many characters as the text is over (and trailing blanks), unless
that leaves fewer than `MIN_NAME`; a name still over after the cut, or too short to cut, is
dropped for the nameless text.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offers.messages.book import parse_book
from offers.messages.placeholders import BLANK, fill_text
from offers.messages.rendering import MIN_NAME, render_texts
from offers.messages.sms import sms_info

TEXT = "Dear {first_name}, " + "a" * 250 + "{perk_line}"
NAMELESS = "Dear customer, " + "a" * 250 + "{perk_line}"
LINE = " {perk_title}: {perk_code}"
BOOK = parse_book(
    '[[templates]]\nincident = "flight_delay"\nkind = "apology"\nlanguage = "en"\n'
    f'channel = "sms"\ntext = "{TEXT}"\nnameless = "{NAMELESS}"\n'
    '[[templates]]\nincident = "flight_delay"\nkind = "apology"\nlanguage = "en"\n'
    f'text = "{TEXT}"\nnameless = "{NAMELESS}"\n'
    '[[templates]]\nincident = "flight_delay"\nkind = "perk_line"\nlanguage = "en"\n'
    f'text = "{LINE}"\n'
)


def _text(row: dict[str, Any], name: str | None) -> str:
    named = bool((name or "").strip(BLANK))
    values = {"perk_title": row["perk_title"] or "", "perk_code": row["perk_code"] or ""}
    line = fill_text(LINE, values) if row["_given"] else ""
    return fill_text(TEXT if named else NAMELESS, {"first_name": name or "", "perk_line": line})


def _over(text: str) -> int:
    info = sms_info(text)
    return max(info.units - (306 if info.encoding == "GSM-7" else 134), 0)


def by_hand(row: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(text, kept name, fit) for one row."""
    name, fit = row["first_name"], None

    def kept(name: str | None) -> str | None:
        return name if (name or "").strip(BLANK) else None

    if row["channel"] == "sms" and kept(name) and _over(_text(row, name)):
        keep = len(name) - _over(_text(row, name))
        if keep >= MIN_NAME:
            name, fit = name[:keep].rstrip(BLANK), "shortened"
        else:
            name, fit = None, "dropped"
        if kept(name) and _over(_text(row, name)):
            name, fit = None, "dropped"
    return _text(row, name), kept(name), fit


names = st.one_of(
    st.none(),
    st.sampled_from(["Mei", "陈", "Zoë", " \u3000", "Ann-Marie", "x" * 50, "陈" * 9, "€" * 20]),
    st.just(" " * 45 + "x" * 10),  # cut to blanks: the nameless text
    st.text(alphabet="ab €ë陈😀{}", min_size=1, max_size=60),
)
rows = st.fixed_dictionaries(
    {
        "message_kind": st.just("apology"),
        "language": st.just("en"),
        "channel": st.sampled_from(["sms", "email"]),
        "_given": st.booleans(),
        "first_name": names,
        "perk_code": st.one_of(st.none(), st.text(alphabet="ABC234", min_size=8, max_size=8)),
        "perk_title": st.sampled_from(["a meal", "贵宾室", "lounge € pass"]),
    }
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, min_size=1, max_size=40))
def test_names_give_way_to_the_sms_budget_as_by_hand(batch: list[dict[str, Any]]) -> None:
    frame = pl.DataFrame(
        batch,
        schema={
            "message_kind": pl.String,
            "language": pl.String,
            "channel": pl.String,
            "_given": pl.Boolean,
            "first_name": pl.String,
            "perk_code": pl.String,
            "perk_title": pl.String,
        },
    )
    out = render_texts(frame, BOOK, "flight_delay", "message_kind", "_given")
    got = list(zip(out.text, out.first_name, out.name_fit, strict=True))
    assert got == [by_hand(r) for r in batch]
