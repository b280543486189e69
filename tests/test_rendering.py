"""Whole-incident rendering agrees, row for row, with filling each template by hand."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offers.messages.book import load_default_book, resolve
from offers.messages.placeholders import BLANK, compile_template
from offers.messages.rendering import PERK_LINE, render_texts
from offers.record import CODE_MARK, NAME_MARK
from segmentation.profiles import CHANNELS, LANGUAGES

BOOK = load_default_book()
INCIDENTS = ["flight_delay", "cancellation", "lost_baggage", "order_late"]


def unmarked(text: str) -> str:
    """Literal text as the engine writes it: without the shells' mark characters."""
    return text.replace(NAME_MARK, "").replace(CODE_MARK, "")


def by_hand(row: dict[str, Any], incident: str) -> tuple[str | None, str | None]:
    """One row the slow, obvious way: look the template up, fill every placeholder (only
    the name and the code keep mark characters)."""
    lookup = {(k, lang, ch): (t, tl) for k, lang, ch, t, tl in resolve(BOOK, incident).rows()}
    found = lookup.get((row["message_kind"], row["language"], row["channel"]))
    if found is None:
        return None, None
    line = lookup.get((PERK_LINE, row["language"], row["channel"])) if row["_given"] else None

    def fill(index: int) -> str:
        template = BOOK.templates[index]
        nameless = not (row.get("first_name") or "").strip(BLANK) and template.nameless
        out = ""
        for literal, field in compile_template(template.nameless if nameless else template.text):
            out += unmarked(literal)
            if field == PERK_LINE:
                out += fill(line[0]) if line else ""
            elif field is not None:
                value = row.get(field)
                value = "" if value is None else str(value)
                out += value if field in ("first_name", "perk_code") else unmarked(value)
        return out

    return fill(found[0]), found[1]


names = st.one_of(
    st.none(),
    st.text(min_size=1, max_size=12),
    st.sampled_from([NAME_MARK, f"A{CODE_MARK}{NAME_MARK}B", f"{CODE_MARK}", "", " \u3000"]),
)
rows = st.fixed_dictionaries(
    {
        "message_kind": st.sampled_from(["apology", "update", None]),
        "language": st.sampled_from(list(LANGUAGES)),
        "channel": st.one_of(st.none(), st.sampled_from(list(CHANNELS))),
        "_given": st.booleans(),
        "first_name": names,
        "perk_code": st.one_of(st.none(), st.text(alphabet="ABC234", min_size=8, max_size=8)),
        "perk_title": names,
        "valid_until": st.one_of(st.none(), st.just(date(2027, 1, 2))),
        "flight": st.just("MG1"),
        "subject": st.sampled_from(["MG1", "ORD-9 {x}", f"M{NAME_MARK}G{CODE_MARK}1"]),
        "delay_minutes": st.sampled_from([50, 95]),
        "reference": st.just("ORD-9"),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, min_size=1, max_size=40), st.sampled_from(INCIDENTS))
def test_rendering_matches_filling_each_template_by_hand(
    batch: list[dict[str, Any]], incident: str
) -> None:
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
            "valid_until": pl.Date,
            "flight": pl.String,
            "subject": pl.String,
            "delay_minutes": pl.Int32,
            "reference": pl.String,
        },
    )
    text, language, shell, name, _ = render_texts(
        frame, BOOK, incident, "message_kind", "_given", max_segments=99
    )
    assert list(zip(text, language, strict=True)) == [by_hand(r, incident) for r in batch]
    # the shell gives the text back with the code spliced in first, then the name
    for row, expected, kept, shape in zip(batch, text, name, shell, strict=True):
        if shape is None:
            assert expected is None and kept is None
            continue
        spliced = shape.replace(CODE_MARK, row["perk_code"] or "").replace(NAME_MARK, kept or "")
        assert spliced == expected
        assert kept == (row["first_name"] if NAME_MARK in shape else None)


def test_marketing_previews_drop_mark_characters_as_decisions_do() -> None:
    """A template or value carrying the shells' mark characters previews exactly as the
    same message without them, which is what the engine sends."""
    import msgspec

    from offers.messages.book import preview, sample_values

    marked = msgspec.structs.replace(
        BOOK,
        templates=[
            msgspec.structs.replace(t, text=f"{NAME_MARK}{t.text}{CODE_MARK}")
            for t in BOOK.templates
        ],
    )
    values = sample_values(perk_title="a meal voucher", valid_until=date(2026, 12, 1))
    odd = values | {"flight": f"MG{CODE_MARK}123{NAME_MARK}"}
    for kind in ("apology", "update"):
        for language in LANGUAGES:
            where = {"incident": "flight_delay", "kind": kind, "language": language}
            plain = preview(BOOK, channel="sms", values=values, **where)
            with_marks = preview(marked, channel="sms", values=odd, **where)
            assert with_marks.text == plain.text and plain.text
