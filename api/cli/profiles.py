"""`makegood profiles …`: customer profiles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import polars as pl
from rich.console import Console
from rich.table import Table

from api.cli.engine import Engine, engine_options, open_spark
from api.settings import Settings
from segmentation.snapshots import MODES, Change, Mode, TooManyRemoved

console = Console()

SHOWN_ERRORS = 20


@click.group("profiles")
def group() -> None:
    """Customer profiles: synthesize, import, derive, roll back, show."""


@group.command("synth")
@click.option("--n", "n", default=10_000, show_default=True, type=click.IntRange(1, 50_000_000))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
def synth(n: int, seed: int, output: Path) -> None:
    """Write N realistic synthetic airline customers to a Parquet file (same seed, same bytes)."""
    from segmentation.synth import synth_profiles, write_profiles

    with console.status(f"synthesizing {n:,} profiles…"):
        frame = synth_profiles(n, seed)
        write_profiles(frame, output)
    console.print(f"wrote {frame.height:,} profiles to {output}")


def _error_table(errors: Sequence[Any], total: int) -> Table:
    """The first errors as a table; contact details masked like everywhere else."""
    from segmentation.book import PERSONAL_COLUMNS, mask

    table = Table("row", "column", "value", "reason", title=f"{total:,} problems")
    for e in errors[:SHOWN_ERRORS]:
        value = mask(e.value) if e.column in PERSONAL_COLUMNS else e.value
        row = "file" if e.row is None else str(e.row)
        table.add_row(row, e.column, "" if value is None else repr(value), e.reason)
    if total > SHOWN_ERRORS:
        table.caption = f"… and {total - SHOWN_ERRORS:,} more"
    return table


def _mode_options(command: Callable[..., None]) -> Callable[..., None]:
    """--mode and --force: how a load meets the profiles already served."""
    command = click.option(
        "--force",
        is_flag=True,
        help="Replace even when that removes more than the allowed share of the profiles "
        "(MAKEGOOD_MAX_REMOVED_SHARE).",
    )(command)
    return click.option(
        "--mode",
        type=click.Choice(MODES),
        default="upsert",
        show_default=True,
        help="upsert: new ids added, known ids updated, nobody removed; "
        "replace: the file is every customer.",
    )(command)


def _load(
    settings: Settings,
    profiles: pl.DataFrame,
    mode: Mode,
    force: bool,
    supplied: Sequence[str] | None = None,
) -> tuple[Path, Change]:
    """Merge `profiles` into the served ones and write the result as the newest snapshot.

    The write comes last: a refused replace, an unusable id or profiles the active
    segmentation cannot segment (which would stop the next `serve`) leave nothing behind.
    """
    from segmentation.snapshots import Snapshots

    snapshots = Snapshots(settings.data_dir)
    with snapshots.lock():
        try:
            staged = snapshots.stage_import(
                profiles,
                mode,
                supplied=None if supplied is None else list(supplied),
                max_removed_share=settings.limits.max_removed_share,
                force=force,
            )
        except TooManyRemoved as exc:
            raise click.ClickException(f"{exc}; nothing written (--force replaces anyway)") from exc
        _check_servable(settings, staged.profiles)
        return snapshots.commit(staged), staged.change


def _check_servable(settings: Settings, profiles: pl.DataFrame) -> None:
    """Segment `profiles` with the active model as `serve` will when it starts."""
    from segmentation.book import ProfileBook
    from segmentation.registry import Registry

    registry = Registry(settings.data_dir / "models")
    version = registry.active()
    if version is not None:
        ProfileBook(profiles, registry.load(version))


def _print_change(change: Change, path: Path) -> None:
    """What the load changed, by customer: the line an operator checks before walking away."""
    console.print(
        f"{change.mode}: [bold]{change.added:,}[/] added, [bold]{change.updated:,}[/] updated, "
        f"[bold]{change.removed:,}[/] removed ({change.after:,} profiles, were {change.before:,})"
    )
    console.print(f"snapshot {path}")


@group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--mapping",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML mapping: renames, value maps, constants.",
)
@click.option(
    "--quarantine",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Load the good rows and write the bad ones here (Parquet) with their reasons.",
)
@click.option("--max-errors", default=50, show_default=True, type=click.IntRange(1, 100_000))
@_mode_options
@click.pass_obj
def import_(
    settings: Settings,
    file: Path,
    mapping: Path | None,
    quarantine: Path | None,
    max_errors: int,
    mode: Mode,
    force: bool,
) -> None:
    """Import profiles from CSV, Parquet, NDJSON or Excel (.xlsx) as a new snapshot.

    All-or-nothing: on any error nothing is written, unless --quarantine is given.
    The previous snapshot is kept: `profiles rollback` serves it again.
    """
    from segmentation.importer import import_profiles

    with console.status(f"importing {file}…"):
        result = import_profiles(file, mapping, quarantine, max_errors)
    if result.errors:
        console.print(_error_table(result.errors, result.error_count))
    if not result.ok:
        raise click.ClickException(
            f"import failed: {result.error_count:,} problems in {result.rows:,} rows; "
            "nothing written"
        )
    with console.status(f"loading {result.profiles.height:,} profiles ({mode})…"):
        path, change = _load(settings, result.profiles, mode, force, result.supplied)
    result.write_quarantine()
    console.print(
        f"read {result.rows:,} rows: {result.profiles.height:,} loaded, "
        f"{result.rejected.height:,} rejected"
        + (f" (written to {result.quarantine})" if result.quarantine else "")
    )
    _print_change(change, path)


@group.command("rollback")
@click.pass_obj
def rollback(settings: Settings) -> None:
    """Serve the profiles served before the newest snapshot again.

    Written as a new snapshot, so history is kept; again goes one step further back.
    """
    from segmentation.snapshots import Snapshots

    snapshots = Snapshots(settings.data_dir)
    with snapshots.lock():
        staged = snapshots.stage_rollback()
        _check_servable(settings, staged.profiles)
        path = snapshots.commit(staged)
    console.print(f"snapshot {staged.restores:04d} restored")
    _print_change(staged.change, path)


@group.command("derive")
@click.argument("transactions", nargs=-1, required=True)
@click.option("--customer", required=True, help="Customer id column.")
@click.option("--time", "time_", required=True, help="Transaction time column.")
@click.option("--amount", required=True, help="Amount column, or QUANTITY*PRICE.")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]))
@click.option("--invoice", help="Invoice/order column; a leading 'C' marks a cancellation.")
@click.option("--quantity", help="Quantity column, for items per basket.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--import", "into_snapshot", is_flag=True, help="Load as a new profile snapshot.")
@_mode_options
@engine_options
@click.option(
    "--scratch",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --engine spark: a folder Spark's executors and this machine both reach, for "
    "the per-customer sums (default: a temporary folder here, enough for local masters).",
)
@click.pass_obj
def derive(
    settings: Settings,
    transactions: tuple[str, ...],
    customer: str,
    time_: str,
    amount: str,
    as_of: datetime | None,
    invoice: str | None,
    quantity: str | None,
    output: Path | None,
    into_snapshot: bool,
    mode: Mode,
    force: bool,
    engine: Engine,
    spark_master: str | None,
    scratch: Path | None,
) -> None:
    """Derive profiles (recency, frequency, monetary, tenure, baskets) from transactions.

    TRANSACTIONS are Parquet, CSV or NDJSON files; with --engine spark also Parquet
    directories, globs and partitioned folders (read by Spark).
    """
    from segmentation.derive import DERIVED_COLUMNS
    from segmentation.derive import derive as derive_rfm
    from segmentation.synth import write_profiles

    if (output is None) == (not into_snapshot):
        raise click.UsageError("give exactly one of -o/--output and --import")
    if engine == "spark":
        derived = _derive_on_spark(
            transactions, customer, time_, amount, as_of, quantity, invoice, spark_master, scratch
        )
    else:
        for name in transactions:
            if not Path(name).exists():
                raise click.BadParameter(
                    f"Path {name!r} does not exist.", param_hint="TRANSACTIONS"
                )
        with console.status(f"deriving profiles from {', '.join(map(str, transactions))}…"):
            derived = derive_rfm(
                list(transactions), customer, time_, amount, as_of, quantity, invoice
            )
    r = derived.report
    table = Table("rows", "count", title=f"as of {r.as_of:%Y-%m-%d %H:%M}")
    for label, value in (
        ("read", r.rows),
        ("used", r.used_rows),
        ("left out: no customer", r.null_customer_rows),
        ("left out: no usable time or amount", r.unusable_rows),
        ("left out: after as-of", r.after_as_of_rows),
        ("returns (negative lines)", r.return_rows),
        ("cancelled invoices", r.cancelled_invoices),
        ("customers", r.customers),
    ):
        table.add_row(label, f"{value:,}")
    console.print(table)
    console.print(f"returns net against spend: {r.returns_value:,.2f}")
    if output is not None and output.suffix.lower() == ".csv":
        _write_csv(derived.profiles, output)
        console.print(f"wrote {derived.profiles.height:,} profiles to {output}")
    elif output is not None:
        write_profiles(derived.profiles, output)
        console.print(f"wrote {derived.profiles.height:,} profiles to {output}")
    else:
        path, change = _load(settings, derived.profiles, mode, force, DERIVED_COLUMNS)
        _print_change(change, path)


def _derive_on_spark(
    transactions: tuple[str, ...],
    customer: str,
    time_: str,
    amount: str,
    as_of: datetime | None,
    quantity: str | None,
    invoice: str | None,
    master: str | None,
    scratch: Path | None,
) -> Any:
    import tempfile

    from segmentation.spark_derive import derive_on_spark

    spark = open_spark(master)
    with console.status("deriving profiles on Spark…"):
        if scratch is not None:
            scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch, prefix="derive-") as work:
            return derive_on_spark(
                spark,
                list(transactions),
                customer,
                time_,
                amount,
                Path(work),
                as_of,
                quantity,
                invoice,
            )


@group.command("show")
@click.argument("customer_id")
@click.option("--reveal", is_flag=True, help="Show email and phone unmasked.")
@click.pass_obj
def show(settings: Settings, customer_id: str, reveal: bool) -> None:
    """Print one profile from the newest snapshot, with its segment when a model is active."""
    import polars as pl

    from segmentation.book import mask_personal
    from segmentation.registry import Registry
    from segmentation.snapshots import Snapshots

    latest = Snapshots(settings.data_dir).latest()
    if latest is None:
        raise click.ClickException(f"no profile snapshot in {settings.data_dir}")
    row = pl.scan_parquet(latest).filter(pl.col("customer_id") == customer_id).collect()
    if row.height == 0:
        raise click.ClickException(f"no profile {customer_id!r} in {latest.name}")
    registry = Registry(settings.data_dir / "models")
    version = registry.active()
    if version is not None:
        row = registry.load(version).assign(row)
    profile = row.row(0, named=True)
    if not reveal:
        profile = mask_personal(profile)
    table = Table("field", "value", title=f"{customer_id} ({latest.name})")
    for key, value in profile.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)


def _write_csv(frame: pl.DataFrame, path: Path) -> None:
    """Profiles as CSV that `profiles import` reads back: lists joined with "|", and text
    a spreadsheet would run as a formula quoted (the import takes the quote off again)."""
    from segmentation.cells import guard_frame

    lists = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.List)]
    joined = frame.with_columns(
        pl.col(name).cast(pl.List(pl.String)).list.join("|") for name in lists
    )
    guard_frame(joined).write_csv(path)
