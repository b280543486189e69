"""Message books per incident kind: named, checked, compared, merged into the live wording.

A book serves one incident kind (its name, e.g. `flight_delay`) or every kind without a
book of its own (`generic`, the templates with `incident = "*"`). The live wording is the
newest published version of every book, merged; `resolve` picks per incident kind, so two
books never compete for a message. Checking a book finds every problem at once: unknown
placeholders, languages or channels, a template for another incident kind, an SMS over its
segment budget in some language, and messages a language or channel would get in another
language or not at all.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec
import polars as pl
import tomli_w

from offers.incidents import FLIGHT_KINDS, SERVICE_KINDS
from offers.messages.book import MESSAGE_KINDS, MessageBook, Template, TemplateFinding, resolve
from offers.messages.book import validate_book as sms_findings
from offers.messages.placeholders import TemplateError, compile_template
from segmentation.profiles import CHANNELS, LANGUAGES

__all__ = [
    "BOOK_NAMES",
    "GENERIC",
    "BookChange",
    "book_findings",
    "book_incident",
    "decode_book",
    "diff_books",
    "dump_book",
    "merge_books",
    "split_book",
]

GENERIC = "generic"
#: Names a message book may have: an incident kind, or `generic` for `incident = "*"`.
BOOK_NAMES: tuple[str, ...] = (*FLIGHT_KINDS, *SERVICE_KINDS, GENERIC)
#: Messages a customer must get: without one, an incident sends nothing in that language.
REQUIRED = ("apology", "update")


def book_incident(name: str) -> str:
    """The `incident` of a book's templates: `*` for the generic book."""
    return "*" if name == GENERIC else name


def _book_name(incident: str) -> str:
    return GENERIC if incident == "*" else incident


def decode_book(text: str, source: str = "message book") -> MessageBook:
    """The book's templates, read without judging them (`book_findings` does that).

    Raises TemplateError naming the line's problem when the TOML or its shape is wrong.
    """
    try:
        book = msgspec.convert(tomllib.loads(text), MessageBook)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise TemplateError(f"{source}: {exc}") from exc
    if book.versions:
        raise TemplateError(f"{source}: field versions: set by publishing, not by a file")
    return book


def dump_book(book: MessageBook) -> str:
    """The book as TOML, one `[[templates]]` each, in the book's order."""
    rows = [
        {k: v for k, v in msgspec.to_builtins(t).items() if v is not None} for t in book.templates
    ]
    return tomli_w.dumps({"templates": rows})


def split_book(book: MessageBook) -> dict[str, MessageBook]:
    """The shipped single-file book as one book per incident kind (and `generic`)."""
    out: dict[str, list[Template]] = {}
    for t in book.templates:
        out.setdefault(_book_name(t.incident), []).append(t)
    return {name: MessageBook(templates=ts) for name, ts in out.items()}


def merge_books(books: Mapping[str, tuple[int, MessageBook]]) -> MessageBook:
    """The live wording: every book's templates, and which version of each is in it."""
    templates = [t for _, (_, book) in sorted(books.items()) for t in book.templates]
    versions = {name: version for name, (version, _) in sorted(books.items())}
    return MessageBook(templates=templates, versions=versions)


def _finding(
    t: Template, code: str, message: str, field: str = "text", severity: str = "error"
) -> TemplateFinding:
    return TemplateFinding(
        severity=severity,  # type: ignore[arg-type]
        code=code,
        template=f"{t.incident}/{t.kind}/{t.language}/{t.channel}",
        language=t.language,
        field=field,
        message=message,
    )


def _template_findings(name: str, book: MessageBook) -> list[TemplateFinding]:
    """Each template on its own: incident, language, channel, placeholders, nameless."""
    out: list[TemplateFinding] = []
    wanted = book_incident(name)
    seen: set[tuple[str, str, str]] = set()
    for t in book.templates:
        if t.incident != wanted:
            why = f"the book {name} holds texts for incident {wanted!r} only"
            out.append(_finding(t, "other-incident", why, "incident"))
        if t.language not in LANGUAGES:
            why = f"unknown language {t.language!r} (use {', '.join(LANGUAGES)})"
            out.append(_finding(t, "unknown-language", why, "language"))
        if t.channel != "*" and t.channel not in CHANNELS:
            why = f"unknown channel {t.channel!r} (use *, {', '.join(CHANNELS)})"
            out.append(_finding(t, "unknown-channel", why, "channel"))
        key = (t.kind, t.language, t.channel)
        if key in seen:
            out.append(_finding(t, "duplicate", "a second text for the same message", "kind"))
        seen.add(key)
        for field, text in (("text", t.text), ("nameless", t.nameless)):
            if text is None:
                continue
            try:
                pieces = compile_template(text, "")
            except TemplateError as exc:
                out.append(_finding(t, "placeholder", str(exc).removeprefix(": "), field))
                continue
            if field == "nameless" and any(f == "first_name" for _, f in pieces):
                why = "a nameless text cannot use {first_name}"
                out.append(_finding(t, "placeholder", why, field))
    return out


def _coverage(name: str, book: MessageBook) -> list[TemplateFinding]:
    """Messages some language or channel gets in another language, or not at all."""
    lookup = resolve(book, book_incident(name))
    out: list[TemplateFinding] = []
    for kind in MESSAGE_KINDS:
        for language in LANGUAGES:
            rows = lookup.filter((pl.col("_kind") == kind) & (pl.col("language") == language))
            found = dict(zip(rows["channel"], rows["_text_language"], strict=True))
            missing = [c for c in CHANNELS if c not in found]
            other = sorted({found[c] for c in found if found[c] != language})
            where = f"{book_incident(name)}/{kind}/{language}/*"
            if missing:
                required = kind in REQUIRED
                out.append(
                    TemplateFinding(
                        severity="error" if required else "warning",
                        code="missing-text",
                        template=where,
                        language=language,
                        field="channel",
                        message=(
                            f"no {kind.replace('_', ' ')} text for {', '.join(missing)}: "
                            + ("these customers get no message" if required else "none is sent")
                        ),
                    )
                )
            elif other:
                out.append(
                    TemplateFinding(
                        severity="warning",
                        code="missing-language",
                        template=where,
                        language=language,
                        field="language",
                        message=f"no {language} text: customers read the {other[0]} one",
                    )
                )
    return out


def book_findings(
    name: str, book: MessageBook, titles: Sequence[dict[str, str]] = ()
) -> list[TemplateFinding]:
    """Every problem of book `name`, errors first; a book with errors is not published.

    SMS budgets are checked at their worst case in every language (the longest name a
    profile may carry, the longest perk title of `titles` in that language).
    """
    if name not in BOOK_NAMES:
        return [
            TemplateFinding(
                severity="error",
                code="unknown-book",
                template=name,
                language="*",
                field="name",
                message=f"a message book is named for an incident kind: {', '.join(BOOK_NAMES)}",
            )
        ]
    found = _template_findings(name, book)
    if not any(f.severity == "error" for f in found):  # only readable templates render
        found += _coverage(name, book) + sms_findings(book, titles)
    return sorted(found, key=lambda f: f.severity != "error")


class BookChange(msgspec.Struct, frozen=True, kw_only=True):
    """One template added, removed or changed between two versions of a book."""

    change: Literal["added", "removed", "changed"]
    template: str
    field: str | None = None
    before: str | None = None
    after: str | None = None


def diff_books(before: MessageBook, after: MessageBook) -> list[BookChange]:
    """What changed, template by template (keyed by kind, language and channel)."""

    def index(book: MessageBook) -> dict[str, Template]:
        return {f"{t.incident}/{t.kind}/{t.language}/{t.channel}": t for t in book.templates}

    old, new = index(before), index(after)
    out = [
        BookChange(change="removed", template=k, before=old[k].text) for k in old if k not in new
    ]
    for key, t in new.items():
        if key not in old:
            out.append(BookChange(change="added", template=key, after=t.text))
            continue
        for field in ("text", "nameless"):
            was, now = getattr(old[key], field), getattr(t, field)
            if was != now:
                out.append(
                    BookChange(change="changed", template=key, field=field, before=was, after=now)
                )
    return out
