"""`makegood messages list|export|import|check|diff|publish|rollback|history`: message books
as files and versions, the same lifecycle as `makegood offers`.

A book is named for the incident kind it serves (`generic`: every kind without its own).
Checks use the live table's perk titles for SMS worst cases. Errors are one line and exit 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
import sqlalchemy as sa
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.cli.who import current_user
from api.settings import Settings
from offers.catalog import OfferTable, load_default_table, parse_table
from offers.ledger import BookRefused, MessageStore, Ref
from offers.ledger.message_versions import Check
from offers.messages import (
    BOOK_NAMES,
    BookChange,
    MessageBook,
    TemplateFinding,
    book_findings,
    decode_book,
)

console = Console()
FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
NAME = click.Choice(BOOK_NAMES)


@contextmanager
def book_store(settings: Settings) -> Iterator[MessageStore]:
    """The data folder's message books; a fresh folder gets the shipped ones published."""
    from offers.ledger import Ledger, create_engine, live_stamp, publish_shipped_books, upgrade
    from offers.messages import load_default_book

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.db_url)
    try:
        upgrade(engine)
        if live_stamp(Ledger(engine)) == 0:
            publish_shipped_books(Ledger(engine), load_default_book(), datetime.now(UTC))
        yield MessageStore(engine)
    finally:
        engine.dispose()


def live_table(settings: Settings) -> OfferTable:
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


def _check(settings: Settings) -> Check:
    titles = [dict(p.title) for p in live_table(settings).perks]
    return lambda name, book: book_findings(name, book, titles)


def book_ref(text: str) -> Ref:
    digits = text.removeprefix("v")
    if digits.isdigit() and int(digits) >= 1:
        return int(digits)
    if text in ("draft", "live"):
        return text  # type: ignore[return-value]
    raise click.BadParameter(f"{text!r}: use N, vN, draft or live")


def _read(file: Path) -> tuple[str, MessageBook]:
    text = file.read_text(encoding="utf-8")
    return text, decode_book(text, file.name)


def print_book_findings(findings: list[TemplateFinding]) -> None:
    if not findings:
        console.print("no findings")
        return
    table = Table("severity", title="findings")
    for column in ("template", "for", "field", "problem"):
        table.add_column(column, overflow="fold")
    for f in findings:
        style = "red" if f.severity == "error" else "yellow"
        table.add_row(f"[{style}]{f.severity}[/]", f.template, f.language, f.field, f.message)
    console.print(table)


def _print_changes(changes: list[BookChange]) -> None:
    """One change a paragraph, as a diff reads: the template, then - before and + after."""
    if not changes:
        console.print("no changes")
        return
    for c in changes:
        console.print(f"{c.change} {c.template}" + (f" ({c.field})" if c.field else ""))
        if c.before is not None:
            console.print(f"  - {c.before}", markup=False, highlight=False, soft_wrap=True)
        if c.after is not None:
            console.print(f"  + {c.after}", markup=False, highlight=False, soft_wrap=True)


BY = click.option("--by", default=lambda: current_user(), show_default="$USER")


def register(group: click.Group) -> None:
    """Add the book commands to `makegood messages`."""
    for command in (list_cmd, export_cmd, import_cmd, check_cmd, diff_cmd, publish_cmd):
        group.add_command(command)
    group.add_command(rollback_cmd)
    group.add_command(history_cmd)


@click.command("list")
@click.pass_obj
def list_cmd(settings: Settings) -> None:
    """Every message book: newest version, who published it, whether a draft waits."""
    with book_store(settings) as store:
        books = store.books()
    table = Table("book", "version", "published (UTC)", "by", "draft")
    for b in books:
        latest = b.latest
        table.add_row(
            b.name,
            f"v{latest.version}" if latest else "-",
            f"{latest.published_at:%Y-%m-%d %H:%M}" if latest else "-",
            latest.published_by if latest else "-",
            "yes" if b.draft else "",
        )
    console.print(table)


@click.command("export")
@click.argument("name", type=NAME)
@click.option("--version", "version", default="live", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout.")
@click.pass_obj
def export_cmd(settings: Settings, name: str, version: str, out: Path | None) -> None:
    """Write book NAME (a version, `draft` or `live`) as TOML to edit."""
    with book_store(settings) as store:
        body = store.body(name, book_ref(version))
    if out is None:
        click.echo(body, nl=False)
    else:
        out.write_text(body, encoding="utf-8")
        console.print(f"wrote {name} {version} to {out}")


@click.command("import")
@click.argument("name", type=NAME)
@click.argument("file", type=FILE)
@BY
@click.pass_obj
def import_cmd(settings: Settings, name: str, file: Path, by: str) -> None:
    """Store FILE as the draft of book NAME; its findings are printed."""
    text, book = _read(file)
    with book_store(settings) as store:
        store.save_draft(name, text, by, datetime.now(UTC))
    print_book_findings(_check(settings)(name, book))
    console.print(f"draft of {name} saved from {file.name}")


@click.command("check")
@click.argument("name", type=NAME)
@click.option("--version", "version", default="draft", show_default=True)
@click.option("--file", "file", type=FILE, help="Check a file instead of a stored version.")
@click.pass_obj
def check_cmd(settings: Settings, name: str, version: str, file: Path | None) -> None:
    """Check book NAME: placeholders, languages, channels, SMS budgets; exit 1 on errors."""
    if file is not None:
        book = _read(file)[1]
    else:
        with book_store(settings) as store:
            book = store.book(name, book_ref(version))
    findings = _check(settings)(name, book)
    print_book_findings(findings)
    errors = sum(f.severity == "error" for f in findings)
    console.print(f"{name}: {errors} errors, {len(findings) - errors} warnings")
    if errors:
        raise click.exceptions.Exit(1)


@click.command("diff")
@click.argument("name", type=NAME)
@click.option("--from", "before", default="live", show_default=True)
@click.option("--to", "after", default="draft", show_default=True)
@click.pass_obj
def diff_cmd(settings: Settings, name: str, before: str, after: str) -> None:
    """Templates added, removed or changed between two versions (N, draft or live)."""
    with book_store(settings) as store:
        _print_changes(store.diff(name, book_ref(before), book_ref(after)))


@click.command("publish")
@click.argument("name", type=NAME)
@click.argument("file", type=FILE, required=False)
@click.option("--reason", required=True, help="Why: kept with the version.")
@BY
@click.pass_obj
def publish_cmd(settings: Settings, name: str, file: Path | None, reason: str, by: str) -> None:
    """Check and publish FILE (or the draft of NAME) as the next version of book NAME."""
    body = _read(file)[0] if file is not None else None
    with book_store(settings) as store:
        try:
            done = store.publish(
                name,
                by=by,
                reason=reason,
                now=datetime.now(UTC),
                check=_check(settings),
                body=body,
            )
        except BookRefused as exc:
            print_book_findings(exc.findings)
            errors = sum(f.severity == "error" for f in exc.findings)
            raise click.ClickException(f"{name} not published: {errors} errors") from exc
    info = done.info
    console.print(
        f"published {info.name} v{info.version} by {info.published_by}: {info.reason}",
        markup=False,
    )


@click.command("rollback")
@click.argument("name", type=NAME)
@click.argument("version")
@click.option("--reason", required=True)
@BY
@click.pass_obj
def rollback_cmd(settings: Settings, name: str, version: str, reason: str, by: str) -> None:
    """Publish VERSION (N or vN) of book NAME again as a new version."""
    ref = book_ref(version)
    if not isinstance(ref, int):
        raise click.BadParameter(f"{version!r}: a version number", param_hint="VERSION")
    with book_store(settings) as store:
        done = store.rollback(
            name,
            ref,
            by=by,
            reason=reason,
            now=datetime.now(UTC),
            check=_check(settings),
        )
    info = done.info
    console.print(
        f"published {info.name} v{info.version} by {info.published_by}: {info.reason}",
        markup=False,
    )


@click.command("history")
@click.argument("name", type=NAME)
@click.pass_obj
def history_cmd(settings: Settings, name: str) -> None:
    """Published versions of book NAME: when, by whom and why."""
    with book_store(settings) as store:
        versions = store.versions(name)
    table = Table("version", "published (UTC)", "by", "reason", title=f"message book {name}")
    for v in versions:
        table.add_row(
            f"v{v.version}", f"{v.published_at:%Y-%m-%d %H:%M}", v.published_by, escape(v.reason)
        )
    console.print(table)
