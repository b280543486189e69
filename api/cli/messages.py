"""`makegood messages …`: see a message as a customer would, and check SMS lengths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
import sqlalchemy as sa
from rich.console import Console

from api.settings import Settings
from offers.catalog import OfferTable, load_default_table, parse_table
from offers.messages import (
    MESSAGE_KINDS,
    check_book,
    load_default_book,
    preview,
    sample_values,
    validate_book,
)
from segmentation.profiles import CHANNELS, LANGUAGES

console = Console()


def _live_table(settings: Settings) -> OfferTable:
    """The published table when the data folder has one, else the shipped default."""
    from offers.ledger import Store, create_engine

    if settings.database_url is None and not (settings.data_dir / "makegood.db").exists():
        return load_default_table()
    engine = create_engine(settings.db_url)
    try:
        live = Store(engine).live()
    except sa.exc.SQLAlchemyError:  # no schema yet: nothing published
        live = None
    finally:
        engine.dispose()
    return parse_table(live.body) if live else load_default_table()


@click.group("messages")
def group() -> None:
    """Message templates: preview and check."""


@group.command("preview")
@click.option("--lang", "language", type=click.Choice(LANGUAGES), default="en", show_default=True)
@click.option("--channel", type=click.Choice(CHANNELS), default="sms", show_default=True)
@click.option("--kind", type=click.Choice(MESSAGE_KINDS), default="apology", show_default=True)
@click.option("--perk", "perk_id", help="Perk id from the live offer table.")
@click.option("--incident", default="flight_delay", show_default=True)
@click.option("--first-name", default="Mei", show_default=True)
@click.option("--flight", default="MG123", show_default=True)
@click.option("--delay", "delay_minutes", default=95, show_default=True, type=int)
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
) -> None:
    """Render one message with sample values; show its language and SMS segments."""
    table = _live_table(settings)
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
    shown = preview(
        load_default_book(),
        incident=incident,
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
    """Check every SMS template at worst-case length against the live perks' titles."""
    book = load_default_book()
    titles = [dict(p.title) for p in _live_table(settings).perks]
    findings = validate_book(book, titles)
    for f in findings:
        console.print(str(f), markup=False)
    check_book(book, titles)  # raises (exit 1) on errors
    console.print(f"{len(book.templates)} templates, no SMS over two segments")
