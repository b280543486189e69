"""Parsers of what users hand in: any input gives a result or the module's own clear error."""

from __future__ import annotations

import io

import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from offers.catalog.tables import DEFAULTS, TableError, parse_table
from offers.messages.book import DEFAULTS as BOOK_DEFAULTS
from offers.messages.book import parse_book
from offers.messages.placeholders import TemplateError, compile_template
from segmentation.importer import import_profiles
from segmentation.synth import synth_profiles

FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None)
TABLE = (DEFAULTS / "offers.toml").read_text(encoding="utf-8")
BOOK = (BOOK_DEFAULTS / "messages.toml").read_text(encoding="utf-8")


def _mutations(base: str) -> st.SearchStrategy[str]:
    """The file with one line deleted, duplicated or replaced: near misses a user makes."""
    lines = base.splitlines()
    index = st.integers(0, len(lines) - 1)
    junk = st.text(st.characters(codec="utf-8"), max_size=40)
    return st.one_of(
        index.map(lambda i: "\n".join(lines[:i] + lines[i + 1 :])),
        index.map(lambda i: "\n".join(lines[: i + 1] + lines[i:])),
        st.tuples(index, junk).map(lambda t: "\n".join([*lines[: t[0]], t[1], *lines[t[0] + 1 :]])),
        st.tuples(index, junk).map(
            lambda t: "\n".join([*lines[: t[0]], lines[t[0]] + t[1], *lines[t[0] + 1 :]])
        ),
    )


@FAST
@given(st.one_of(st.text(max_size=200), _mutations(TABLE)))
@example("name = 1")
@example('name = "t"\n[[rules]]\nid = 1')
def test_offer_table_parser(text: str) -> None:
    try:
        parse_table(text)
    except TableError as exc:
        assert str(exc)


@FAST
@given(st.text(max_size=120))
@example("{first_name")
@example("{}")
@example("{0}")
@example("{first_name!r:>{x}}")
def test_template_compiler(text: str) -> None:
    try:
        compile_template(text)
    except TemplateError as exc:
        assert str(exc).startswith("template")


@FAST
@given(st.one_of(st.text(max_size=200), _mutations(BOOK)))
def test_message_book_parser(text: str) -> None:
    try:
        parse_book(text)
    except TemplateError as exc:
        assert str(exc)


def _csv() -> bytes:
    frame = synth_profiles(3, 1).drop("latent_kind")
    lists = pl.col("allowed_channels").cast(pl.List(pl.String)).list.join("|")
    buffer = io.BytesIO()
    frame.with_columns(lists).write_csv(buffer)
    return buffer.getvalue()


CSV = _csv()


@settings(FAST, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=300),
        st.tuples(st.integers(0, len(CSV) - 1), st.binary(max_size=8)).map(
            lambda t: CSV[: t[0]] + t[1] + CSV[t[0] + len(t[1]) :]
        ),
    ),
    st.sampled_from(["csv", "ndjson", "parquet", "xlsx"]),
)
@example(CSV, "csv")
def test_profile_import_on_bytes(content: bytes, fmt: str) -> None:
    result = import_profiles(content, fmt=fmt)
    if not result.ok:
        assert result.error_count >= 1 and all(e.reason for e in result.errors)
