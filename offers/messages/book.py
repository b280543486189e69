"""Message books: marketing's templates, looked up and rendered for a whole incident at once.

A book is data (`defaults/messages.toml`). `resolve` picks, for every message kind, language
and channel, the template to use (falling back by channel, then by language); `render` fills
the chosen templates over the decision frame, so rendering never loops over customers. What a
template may contain is in `offers.messages.placeholders`; SMS costs in `offers.messages.sms`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Literal

import msgspec
import polars as pl

from offers.messages.placeholders import (
    VARIABLES,
    TemplateError,
    compile_template,
    fill_column,
    has_name,
)
from offers.messages.sms import SMS_MAX_SEGMENTS, SmsInfo, sms_info, worst_case
from segmentation.profiles import CHANNELS, LANGUAGES

__all__ = [
    "DEFAULTS",
    "LANGUAGE_FALLBACK",
    "MESSAGE_KINDS",
    "MessageBook",
    "MessageKind",
    "Preview",
    "Template",
    "TemplateFinding",
    "check_book",
    "load_default_book",
    "parse_book",
    "preview",
    "render",
    "resolve",
    "sample_values",
    "validate_book",
]

DEFAULTS = Path(__file__).parent / "defaults"

MessageKind = Literal[
    "apology", "update", "perk_line", "rights_line", "followup_checkin", "followup_feedback"
]
MESSAGE_KINDS: tuple[str, ...] = (
    "apology",
    "update",
    "perk_line",
    "rights_line",
    "followup_checkin",
    "followup_feedback",
)

#: Where a language without its own template borrows one from, in order.
LANGUAGE_FALLBACK: dict[str, tuple[str, ...]] = {
    "zh-Hant": ("zh-Hant", "zh-Hans", "en"),
    "zh-Hans": ("zh-Hans", "en"),
    "en": ("en",),
}


class Template(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One text for an incident kind, message kind, language and channel (`*` for any).

    `nameless` is the text for a customer without a name ("Dear customer, ..."), so no
    one reads "Dear , ..."; a text with {first_name} should have one."""

    incident: str
    kind: MessageKind
    language: str
    channel: str = "*"
    text: str
    nameless: str | None = None


class MessageBook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Templates; `versions` names the published version of each book merged into the live
    wording (book name -> version; empty for a book read from a file)."""

    templates: list[Template]
    versions: dict[str, int] = {}

    def label(self, incident: str) -> str | None:
        """`<book> v<N>`: the published book whose texts an incident of this kind gets."""
        own = any(t.incident == incident for t in self.templates)
        name = incident if own else "generic"
        version = self.versions.get(name)
        return None if version is None else f"{name} v{version}"


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
        if t.nameless is not None:
            where = f"{source}: template {_key(t)} (nameless)"
            if any(f == "first_name" for _, f in compile_template(t.nameless, where)):
                raise TemplateError(f"{where}: a nameless text cannot use {{first_name}}")
    return book


def load_default_book() -> MessageBook:
    path = DEFAULTS / "messages.toml"
    return parse_book(path.read_text(encoding="utf-8"), path.name)


def _key(t: Template) -> str:
    return f"{t.incident}/{t.kind}/{t.language}/{t.channel}"


def resolve(book: MessageBook, incident: str) -> pl.DataFrame:
    """For every (kind, language, channel), the template to use and the language it is in.

    Falls back first to the channel-neutral text, then along LANGUAGE_FALLBACK, so a missing
    zh-Hant SMS text becomes the zh-Hant generic one before it becomes zh-Hans. An incident
    kind without texts of its own uses the templates written for `incident = "*"`.
    """
    own = any(t.incident == incident for t in book.templates)
    wanted = incident if own else "*"
    index: dict[tuple[str, str, str], int] = {
        (t.kind, t.language, t.channel): i
        for i, t in enumerate(book.templates)
        if t.incident == wanted
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


def render(
    frame: pl.DataFrame, book: MessageBook, incident: str, kind_column: str, out: str
) -> pl.DataFrame:
    """Render `out` for every row, choosing templates by (kind, language, channel).

    Rows with a null kind or channel get a null text; rows without a name (`has_name`)
    get the template's `nameless` text where it has one. Adds `<out>_language`, the language
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
    keyed = keyed.with_columns(
        _named=has_name() if "first_name" in keyed.columns else pl.lit(False)
    )
    parts = []
    for part in keyed.partition_by("_template", "_named", maintain_order=False):
        idx = part["_template"][0]
        if idx is None:
            parts.append(part.with_columns(pl.lit(None, pl.String).alias(out)))
        else:
            t = book.templates[idx]
            text = t.text if part["_named"][0] or t.nameless is None else t.nameless
            parts.append(fill_column(part, compile_template(text), out))
    result = (
        pl.concat(parts, how="vertical_relaxed")
        if parts
        else keyed.with_columns(pl.lit(None, pl.String).alias(out))
    )
    return (
        result.sort("_row")
        .rename({"_text_language": f"{out}_language"})
        .drop("_row", "_template", "_named", "_kind", "_lang", "_channel", strict=False)
    )


class TemplateFinding(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A template problem: which template, for which customers' language, and what."""

    severity: Literal["error", "warning"]
    code: str
    template: str
    language: str
    field: str = "text"
    message: str

    def __str__(self) -> str:
        return (
            f"{self.severity}: template {self.template} (for {self.language} customers), "
            f"field {self.field}: {self.message}"
        )


def validate_book(
    book: MessageBook,
    titles: Sequence[dict[str, str]] = (),
    max_segments: int = SMS_MAX_SEGMENTS,
) -> list[TemplateFinding]:
    """SMS length at worst case for every (incident, kind, language) an SMS is sent in.

    `titles` are the perks' title maps (language -> title); a language without a title
    uses the English one, as the engine does. More than `max_segments` is an error.
    """
    over: dict[int, list[tuple[SmsInfo, str]]] = {}
    for incident in sorted({t.incident for t in book.templates}):
        sms = resolve(book, incident).filter(pl.col("channel") == "sms")
        lines: dict[str, dict[str, str]] = {"perk_line": {}, "rights_line": {}}
        for kind, lang, _, idx, _ in sms.iter_rows():
            if kind in lines:
                lines[kind][lang] = book.templates[idx].text
        for kind, lang, _, idx, _ in sms.iter_rows():
            if kind in lines:
                continue
            options = sorted({t.get(lang) or t.get("en", "") for t in titles}) or [""]
            worst = max(
                (
                    worst_case(
                        book.templates[idx].text,
                        lines["perk_line"].get(lang),
                        title,
                        lines["rights_line"].get(lang),
                    )
                    for title in options
                ),
                key=lambda info: (info.segments, info.units),
            )
            if worst.segments > max_segments:
                over.setdefault(idx, []).append((worst, lang))
    out: list[TemplateFinding] = []
    for idx, found in over.items():
        worst = max((info for info, _ in found), key=lambda info: (info.segments, info.units))
        out.append(
            TemplateFinding(
                severity="error",
                code="sms-too-long",
                template=_key(book.templates[idx]),
                language=", ".join(lang for _, lang in found),
                message=(
                    f"worst case {worst.units} {worst.encoding} characters take "
                    f"{worst.segments} SMS segments (at most {max_segments})"
                ),
            )
        )
    out += [
        TemplateFinding(
            severity="warning",
            code="no-nameless-text",
            template=_key(t),
            language=t.language,
            message=(
                "uses {first_name} but has no `nameless` text: a customer without a name "
                "reads an empty name"
            ),
        )
        for t in book.templates
        if t.nameless is None and any(f == "first_name" for _, f in compile_template(t.text))
    ]
    return out


def check_book(book: MessageBook, titles: Sequence[dict[str, str]] = ()) -> None:
    """Refuse a book with any error finding; the message lists them all."""
    problems = [f for f in validate_book(book, titles) if f.severity == "error"]
    if problems:
        raise TemplateError("; ".join(str(f) for f in problems))


class Preview(msgspec.Struct, frozen=True, kw_only=True):
    """One rendered message: its text, the language it is in, and its SMS cost."""

    text: str | None
    language: str
    text_language: str | None
    channel: str
    kind: str
    fallback: bool
    sms: SmsInfo | None


def preview(
    book: MessageBook,
    *,
    incident: str,
    kind: str,
    language: str,
    channel: str,
    values: dict[str, str],
) -> Preview:
    """Render one message as a customer would get it (`values` fill the variables)."""
    row = {v: values.get(v, "") for v in VARIABLES} | {
        "language": language,
        "channel": channel,
        "message_kind": kind,
        "line_kind": "perk_line" if values.get("perk_title") else None,
        "rights_kind": "rights_line" if values.get("rights") else None,
    }
    frame = pl.DataFrame([row], schema={k: pl.String for k in row})
    frame = render(frame, book, incident, "line_kind", "perk_line")
    frame = render(frame, book, incident, "rights_kind", "rights_line")
    frame = frame.with_columns(pl.col("perk_line", "rights_line").fill_null(""))
    out = render(frame, book, incident, "message_kind", "text").row(0, named=True)
    text, used = out["text"], out["text_language"]
    return Preview(
        text=text,
        language=language,
        text_language=used,
        channel=channel,
        kind=kind,
        fallback=used is not None and used != language,
        sms=sms_info(text) if text is not None and channel == "sms" else None,
    )


def sample_values(
    *,
    perk_title: str | None,
    valid_until: date | None,
    first_name: str = "Mei",
    flight: str = "MG123",
    delay_minutes: int = 95,
    perk_code: str = "K7QP2M9X",
) -> dict[str, str]:
    """Variables for a preview: realistic values, a perk only when one is given."""
    values = {
        "first_name": first_name,
        "flight": flight,
        "subject": flight,
        "reference": flight,
        "delay_minutes": str(delay_minutes),
    }
    if perk_title is not None:
        values |= {"perk_title": perk_title, "perk_code": perk_code}
        values["valid_until"] = valid_until.isoformat() if valid_until else ""
    return values
