"""Message templates, rendered for a whole incident at once.

Templates use `{variable}` placeholders and nothing else: no attribute access, no
expressions, no code. That keeps marketing's text safe to render and lets a template be
compiled into one `concat_str` over columns, so rendering never loops over customers.
"""

from __future__ import annotations

import string
import tomllib
from pathlib import Path
from typing import Literal

import msgspec
import polars as pl

from segmentation.profiles import CHANNELS, LANGUAGES

DEFAULTS = Path(__file__).parent / "defaults"

MessageKind = Literal["apology", "update", "perk_line"]
MESSAGE_KINDS: tuple[str, ...] = ("apology", "update", "perk_line")

#: Variables a template may use, each the name of a column of the decision frame.
VARIABLES = frozenset(
    {
        "first_name",
        "flight",
        "delay_minutes",
        "perk_title",
        "perk_code",
        "valid_until",
        "perk_line",
    }
)

#: Where a language without its own template borrows one from, in order.
LANGUAGE_FALLBACK: dict[str, tuple[str, ...]] = {
    "zh-Hant": ("zh-Hant", "zh-Hans", "en"),
    "zh-Hans": ("zh-Hans", "en"),
    "en": ("en",),
}


class Template(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One text for an incident kind, message kind, language and channel (`*` for any)."""

    incident: str
    kind: MessageKind
    language: str
    channel: str = "*"
    text: str


class MessageBook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    templates: list[Template]


class TemplateError(ValueError):
    """A template that cannot be rendered safely; the message names it."""


Piece = tuple[str, str | None]


def compile_template(text: str, where: str = "template") -> list[Piece]:
    """Split a template into (literal, variable) pieces, refusing anything but plain names."""
    pieces: list[Piece] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"{where}: {exc}") from exc
    for literal, field, spec, conversion in parsed:
        if field is None:
            pieces.append((literal, None))
            continue
        if spec or conversion or not field.isidentifier():
            raise TemplateError(
                f"{where}: only plain {{name}} placeholders are allowed, got {{{field}}}"
            )
        if field not in VARIABLES:
            raise TemplateError(f"{where}: unknown variable {{{field}}}")
        pieces.append((literal, field))
    return pieces


def parse_book(text: str, source: str = "messages") -> MessageBook:
    try:
        book = msgspec.convert(tomllib.loads(text), MessageBook)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise TemplateError(f"{source}: {exc}") from exc
    for t in book.templates:
        if t.language not in LANGUAGES:
            raise TemplateError(f"{source}: template {_key(t)}: unknown language {t.language!r}")
        if t.channel != "*" and t.channel not in CHANNELS:
            raise TemplateError(f"{source}: template {_key(t)}: unknown channel {t.channel!r}")
        compile_template(t.text, f"{source}: template {_key(t)}")
    return book


def load_default_book() -> MessageBook:
    path = DEFAULTS / "messages.toml"
    return parse_book(path.read_text(encoding="utf-8"), path.name)


def _key(t: Template) -> str:
    return f"{t.incident}/{t.kind}/{t.language}/{t.channel}"


def resolve(book: MessageBook, incident: str) -> pl.DataFrame:
    """For every (kind, language, channel), the template to use and the language it is in.

    Falls back first to the channel-neutral text, then along LANGUAGE_FALLBACK, so a missing
    zh-Hant SMS text becomes the zh-Hant generic one before it becomes zh-Hans.
    """
    index: dict[tuple[str, str, str], int] = {
        (t.kind, t.language, t.channel): i
        for i, t in enumerate(book.templates)
        if t.incident == incident
    }
    rows = []
    for kind in MESSAGE_KINDS:
        for language in LANGUAGES:
            for channel in CHANNELS:
                found = next(
                    (
                        (index[(kind, lang, ch)], lang)
                        for lang in LANGUAGE_FALLBACK[language]
                        for ch in (channel, "*")
                        if (kind, lang, ch) in index
                    ),
                    None,
                )
                if found is not None:
                    rows.append((kind, language, channel, found[0], found[1]))
    return pl.DataFrame(
        rows,
        schema={
            "_kind": pl.String,
            "language": pl.String,
            "channel": pl.String,
            "_template": pl.Int32,
            "_text_language": pl.String,
        },
        orient="row",
    )


def _render_partition(part: pl.DataFrame, pieces: list[Piece], out: str) -> pl.DataFrame:
    exprs: list[pl.Expr] = []
    for literal, field in pieces:
        if literal:
            exprs.append(pl.lit(literal))
        if field is not None:
            exprs.append(pl.col(field).cast(pl.String).fill_null(""))
    text = pl.concat_str(exprs) if exprs else pl.lit("")
    return part.with_columns(text.alias(out))


def render(
    frame: pl.DataFrame, book: MessageBook, incident: str, kind_column: str, out: str
) -> pl.DataFrame:
    """Render `out` for every row, choosing templates by (kind, language, channel).

    Rows with a null kind or channel get a null text. Adds `<out>_language`, the language
    the text is actually in (it differs from the customer's where a fallback was used).
    """
    lookup = resolve(book, incident)
    keyed = (
        frame.with_row_index("_row")
        .with_columns(
            _lang=pl.col("language").cast(pl.String), _channel=pl.col("channel").cast(pl.String)
        )
        .join(
            lookup.rename({"language": "_lang", "channel": "_channel"}),
            left_on=[kind_column, "_lang", "_channel"],
            right_on=["_kind", "_lang", "_channel"],
            how="left",
        )
    )
    compiled = [compile_template(t.text) for t in book.templates]
    parts = []
    for part in keyed.partition_by("_template", maintain_order=False):
        idx = part["_template"][0]
        if idx is None:
            parts.append(part.with_columns(pl.lit(None, pl.String).alias(out)))
        else:
            parts.append(_render_partition(part, compiled[idx], out))
    result = (
        pl.concat(parts, how="vertical_relaxed")
        if parts
        else keyed.with_columns(pl.lit(None, pl.String).alias(out))
    )
    return (
        result.sort("_row")
        .rename({"_text_language": f"{out}_language"})
        .drop("_row", "_template", "_kind", "_lang", "_channel", strict=False)
    )


def sms_segments(text: str) -> int:
    """How many SMS a text takes: GSM-7 160 (153 joined), else UCS-2 70 (67 joined)."""
    gsm = all(ch in _GSM7 for ch in text)
    single, joined = (160, 153) if gsm else (70, 67)
    n = len(text)
    return 1 if n <= single else -(-n // joined)


_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
