"""`makegood messages …`: see a message as a customer would, and check SMS lengths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from rich.console import Console

from api.cli.message_books import live_table
from api.settings import Settings
from offers.messages import (
    BOOK_NAMES,
    MESSAGE_KINDS,
    MessageBook,
    book_incident,
    check_book,
    load_default_book,
    preview,
    sample_values,
    validate_book,
)
from segmentation.profiles import CHANNELS, LANGUAGES

console = Console()


def _wording(settings: Settings, name: str | None, version: str) -> tuple[MessageBook, str]:
    """The live wording of the data folder, or one version of one book (and its incident).
    A folder without a database yet reads the shipped wording and is left as it is."""
    from api.cli.message_books import book_ref, book_store
    from offers.ledger import Ledger, live_books

    fresh = settings.database_url is None and not (settings.data_dir / "makegood.db").exists()
    if name is None and fresh:
        return load_default_book(), ""
    with book_store(settings) as store:
        if name is not None:
            return store.book(name, book_ref(version)), book_incident(name)
        return live_books(Ledger(store.engine)) or load_default_book(), ""


@click.group("messages")
def group() -> None:
    """Message books: preview, check, edit, publish, roll back."""


@group.command("preview")
@click.option("--lang", "language", type=click.Choice(LANGUAGES), default="en", show_default=True)
@click.option("--channel", type=click.Choice(CHANNELS), default="sms", show_default=True)
@click.option("--kind", type=click.Choice(MESSAGE_KINDS), default="apology", show_default=True)
@click.option("--perk", "perk_id", help="Perk id from the live offer table.")
@click.option("--incident", default="flight_delay", show_default=True)
@click.option("--first-name", default="Mei", show_default=True)
@click.option("--flight", default="MG123", show_default=True)
@click.option("--delay", "delay_minutes", default=95, show_default=True, type=int)
@click.option("--book", "book_name", type=click.Choice(BOOK_NAMES), help="Preview this book...")
@click.option("--version", default="draft", show_default=True, help="...at this version.")
@click.pass_obj
def preview_cmd(
    settings: Settings,
    language: str,
    channel: str,
    kind: str,
    perk_id: str | None,
    incident: str,
    first_name: str,
    flight: str,
    delay_minutes: int,
    book_name: str | None,
    version: str,
) -> None:
    """Render one message with sample values; show its language and SMS segments.

    The live wording by default; `--book NAME` previews that book's draft (or `--version`).
    """
    table = live_table(settings)
    perk = next((p for p in table.perks if p.id == perk_id), None)
    if perk_id is not None and perk is None:
        raise click.BadParameter(f"unknown perk {perk_id!r} in {table.name}", param_hint="--perk")
    today = datetime.now(UTC).date()
    values = sample_values(
        perk_title=perk.title.get(language, perk.title.get("en")) if perk else None,
        valid_until=today + timedelta(days=perk.validity_days) if perk else None,
        first_name=first_name,
        flight=flight,
        delay_minutes=delay_minutes,
    )
    book, own = _wording(settings, book_name, version)
    shown = preview(
        book,
        incident=own or incident,
        kind=kind,
        language=language,
        channel=channel,
        values=values,
    )
    if shown.text is None:
        raise click.ClickException(f"no {kind} template for {incident} in {language}/{channel}")
    console.print(shown.text, markup=False, highlight=False, soft_wrap=True)
    note = f"[{shown.text_language}, {channel}]"
    if shown.fallback:
        note += f" no {language} template: fell back to {shown.text_language}"
    if shown.sms is not None:
        note += f" {shown.sms.units} {shown.sms.encoding} characters, {shown.sms.segments} SMS"
    console.print(note, markup=False, highlight=False, soft_wrap=True)


@group.command("validate")
@click.pass_obj
def validate_cmd(settings: Settings) -> None:
    """Check every SMS template of the live wording at worst-case length against the live
    perks' titles (`makegood messages check NAME` checks one book's draft)."""
    book = _wording(settings, None, "live")[0]
    titles = [dict(p.title) for p in live_table(settings).perks]
    findings = validate_book(book, titles)
    for f in findings:
        console.print(str(f), markup=False)
    check_book(book, titles)  # raises (exit 1) on errors
    console.print(f"{len(book.templates)} templates, no SMS over two segments")


def _register_books() -> None:
    from api.cli.message_books import register

    register(group)


_register_books()
