"""`makegood offers …`: offer tables for marketing, as files (TOML, CSV, XLSX) and versions.

Commands open the database of the data folder (or MAKEGOOD_DATABASE_URL), validate against
the active segmentation when there is one, and print findings and changes as tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.cli.coverage import print_coverage
from api.cli.folder import folder_checks
from api.cli.who import current_user
from api.settings import Settings
from offers.catalog import (
    Change,
    Checks,
    Finding,
    OfferTable,
    check_file,
    coverage,
    diff_tables,
    read_table_file,
    write_table_file,
)
from offers.ledger import PublishRefused, Ref, Store

console = Console()
FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@contextmanager
def _store(settings: Settings) -> Iterator[Store]:
    from offers.ledger import create_engine, upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.db_url)
    try:
        upgrade(engine)
        yield Store(engine)
    finally:
        engine.dispose()


def _checks(settings: Settings) -> Checks:
    """What a server on this folder validates against (segments, traits, columns)."""
    return folder_checks(settings)


def print_findings(findings: list[Finding]) -> None:
    if not findings:
        console.print("no findings")
        return
    located = any(f.sheet is not None for f in findings)
    columns = (
        ("severity", "where", "rule", "perk", "problem")
        if located
        else ("severity", "rule", "perk", "field", "problem")
    )
    table = Table(*columns, title="findings")
    for f in findings:
        style = "red" if f.severity == "error" else "yellow"
        where = f.place() if located else f.field or ""
        cells = (
            (where, f.rule or "", f.perk or "") if located else (f.rule or "", f.perk or "", where)
        )
        table.add_row(f"[{style}]{f.severity}[/]", *cells, f.message)
    console.print(table)


def print_cases(table: OfferTable, checks: Checks) -> int:
    """Run the table's example cases through the engine; print each; return how many fail."""
    from offers.cases import run_cases
    from offers.messages import load_default_book

    results = run_cases(table, load_default_book(), checks.traits)
    if not results:
        return 0
    out = Table("case", "step", "rule matched", "perk", "", title="example cases")
    for r in results:
        verdict = "[green]ok[/]" if r.ok else "[red]FAILS[/]"
        out.add_row(r.id, str(r.step), r.rule or "-", r.perk or "-", verdict)
    console.print(out)
    for r in results:
        if not r.ok:
            console.print(f"case {r.id}: {r.problem}", markup=False, soft_wrap=True)
    return sum(not r.ok for r in results)


def _examples(checks: Checks) -> Callable[[OfferTable], list[Finding]]:
    """The table's failing example cases, with personas as the folder's segments are them."""
    from offers.cases import case_findings
    from offers.messages import load_default_book

    return lambda table: case_findings(table, load_default_book(), checks.traits)


def print_changes(changes: list[Change]) -> None:
    if not changes:
        console.print("no changes")
        return
    table = Table("change", "what", "id", "field", "before", "after", title="changes")
    for c in changes:
        table.add_row(c.change, c.what, c.id, c.field or "", c.before or "", c.after or "")
    console.print(table)


def _live_name(store: Store, name: str | None) -> str:
    if name is not None:
        return name
    live = store.live()
    if live is None:
        raise click.ClickException("no offer table is published; give --table")
    return live.info.name


def _version_ref(text: str) -> Ref | None:
    digits = text.removeprefix("v")
    if text.startswith("v") and digits.isdigit():
        return int(digits)
    return text if text in ("draft", "live") else None  # type: ignore[return-value]


@click.group("offers")
def group() -> None:
    """Offer tables: validate, diff, publish, roll back, import, export."""


@group.command("validate")
@click.argument("file", type=FILE)
@click.option("--max-step", default=6, show_default=True, type=click.IntRange(1, 100))
@click.pass_obj
def validate_cmd(settings: Settings, file: Path, max_step: int) -> None:
    """Check FILE (TOML, CSV or XLSX); exit 1 when there is any error. A spreadsheet is
    checked cell by cell: every finding at once, each at its sheet, cell and column."""
    checks = folder_checks(settings, max_step)
    if file.suffix.lower() == ".toml":
        table: OfferTable | None = read_table_file(file)[0]
        findings = checks.run(table) if table is not None else []
    else:
        table, findings = check_file(file, checks)
    name = table.name if table is not None else (findings[0].table if findings else file.name)
    print_findings(findings)
    if checks.traits is not None and table is not None:
        print_coverage(coverage(table, checks.traits))
    errors = sum(f.severity == "error" for f in findings)
    failing = print_cases(table, checks) if table is not None and not errors else 0
    cases = len(table.cases) if table is not None else 0
    console.print(
        f"{name}: {errors} errors, {len(findings) - errors} warnings"
        + (f", {failing} of {cases} example cases failing" if cases else "")
    )
    if errors or failing:
        raise click.exceptions.Exit(1)


@group.command("diff")
@click.argument("before")
@click.argument("after")
@click.option("--table", "name", help="Table for vN/draft/live (default: the live table).")
@click.pass_obj
def diff_cmd(settings: Settings, before: str, after: str, name: str | None) -> None:
    """Changes from BEFORE to AFTER: files, or versions written vN, `draft` or `live`."""
    refs = [_version_ref(x) for x in (before, after)]
    tables: list[OfferTable] = []
    if all(r is None for r in refs):
        tables = [read_table_file(Path(x))[0] for x in (before, after)]
    else:
        with _store(settings) as store:
            from_file = [
                read_table_file(Path(x))[0]
                for x, r in zip((before, after), refs, strict=True)
                if r is None
            ]
            table_name = name or (from_file[0].name if from_file else _live_name(store, None))
            for text, ref in zip((before, after), refs, strict=True):
                tables.append(
                    read_table_file(Path(text))[0] if ref is None else store.table(table_name, ref)
                )
    print_changes(diff_tables(tables[0], tables[1]))


@group.command("import")
@click.argument("file", type=FILE)
@click.option("--by", default=lambda: current_user(), show_default="$USER")
@click.pass_obj
def import_cmd(settings: Settings, file: Path, by: str) -> None:
    """Store FILE as the draft of its table (publish it with `offers publish`)."""
    if file.suffix.lower() != ".toml":  # a spreadsheet: every unreadable cell at once
        read, findings = check_file(file, _checks(settings))
        if read is None:
            print_findings(findings)
            raise click.ClickException(f"{file.name}: not imported, some cells cannot be read")
    table, body = read_table_file(file)
    with _store(settings) as store:
        store.save_draft(table, by, datetime.now(UTC), body=body)
    findings = _checks(settings).run(table)
    print_findings(findings)
    console.print(f"draft of {table.name} saved from {file.name}")


@group.command("publish")
@click.argument("file", type=FILE, required=False)
@click.option("--draft", "draft_name", help="Publish this table's draft instead of a file.")
@click.option("--reason", required=True, help="Why: kept with the version.")
@click.option("--by", default=lambda: current_user(), show_default="$USER")
@click.option(
    "--acknowledge-failing-cases",
    "acknowledge",
    is_flag=True,
    help="Publish although example cases fail; the history names them.",
)
@click.pass_obj
def publish_cmd(
    settings: Settings,
    file: Path | None,
    draft_name: str | None,
    reason: str,
    by: str,
    acknowledge: bool,
) -> None:
    """Validate and publish FILE (or a draft) as the next version of its table."""
    if (file is None) == (draft_name is None):
        raise click.UsageError("give FILE or --draft NAME")
    with _store(settings) as store:
        checks = _checks(settings)
        now = datetime.now(UTC)
        try:
            if file is not None:
                table, body = read_table_file(file)
                done = store.publish(
                    table.name,
                    by=by,
                    reason=reason,
                    now=now,
                    checks=checks,
                    body=body,
                    examples=_examples(checks),
                    acknowledge=acknowledge,
                )
            else:
                assert draft_name is not None
                done = store.publish(
                    draft_name,
                    by=by,
                    reason=reason,
                    now=now,
                    checks=checks,
                    examples=_examples(checks),
                    acknowledge=acknowledge,
                )
        except PublishRefused as exc:
            print_findings(exc.findings)
            only_cases = all(f.code == "case-failed" for f in exc.findings if f.severity == "error")
            hint = "; only example cases fail: --acknowledge-failing-cases" if only_cases else ""
            raise click.ClickException(
                f"not published: {len(exc.findings)} findings{hint}"
            ) from exc
    if done.findings:
        print_findings(done.findings)
    info = done.info
    console.print(
        f"published {info.name} v{info.version} by {info.published_by}: {info.reason}",
        markup=False,
    )


@group.command("rollback")
@click.argument("version")
@click.option("--reason", required=True)
@click.option("--table", "name", help="Table to roll back (default: the live table).")
@click.option("--by", default=lambda: current_user(), show_default="$USER")
@click.pass_obj
def rollback_cmd(settings: Settings, version: str, reason: str, name: str | None, by: str) -> None:
    """Publish VERSION (N or vN) again as a new version: "rollback to vN"."""
    number = version.removeprefix("v")
    if not number.isdigit():
        raise click.BadParameter("a version number such as 3 or v3", param_hint="VERSION")
    with _store(settings) as store:
        table_name = _live_name(store, name)
        try:
            done = store.rollback(
                table_name,
                int(number),
                by=by,
                reason=reason,
                now=datetime.now(UTC),
                checks=_checks(settings),
            )
        except PublishRefused as exc:
            print_findings(exc.findings)
            raise click.ClickException("rollback refused") from exc
    info = done.info
    console.print(
        f"published {info.name} v{info.version} by {info.published_by}: {info.reason}",
        markup=False,
    )


@group.command("export")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="FILE.toml, FILE.csv (plus FILE.perks.csv) or FILE.xlsx",
)
@click.option("--version", "version", type=int, help="Version number (default: newest).")
@click.option("--draft", is_flag=True, help="Export the draft instead.")
@click.option("--table", "name", help="Table (default: the live table).")
@click.pass_obj
def export_cmd(
    settings: Settings, output: Path, version: int | None, draft: bool, name: str | None
) -> None:
    """Write a published version (or the draft) as TOML, CSV or XLSX."""
    with _store(settings) as store:
        table_name = _live_name(store, name)
        ref: Ref = "draft" if draft else (version if version is not None else "live")
        body = store.body(table_name, ref)
        table = store.table(table_name, ref)
    segments = _checks(settings).segment_names or ()
    choices = {  # dropdowns in XLSX; one line per list
        "segment": sorted(segments),
        "persona": sorted(p.id for p in table.personas),
    }
    written = write_table_file(table, output, body=body, choices=choices)
    console.print(f"wrote {', '.join(str(p) for p in written)}")


@group.command("versions")
@click.option("--table", "name", help="Table (default: the live table).")
@click.pass_obj
def versions_cmd(settings: Settings, name: str | None) -> None:
    """Published versions: who, when and why."""
    with _store(settings) as store:
        table_name = _live_name(store, name)
        versions = store.versions(table_name)
    table = Table("version", "published at", "by", "reason", title=table_name)
    for v in versions:
        table.add_row(
            f"v{v.version}",
            v.published_at.isoformat(timespec="seconds"),
            v.published_by,
            escape(v.reason),
        )
    console.print(table)
