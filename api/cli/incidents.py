"""`makegood incidents …`: the incident engine, offline, against the data folder."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import click
import msgspec
import polars as pl
from rich.console import Console

from api.cli.engine import Engine, engine_options, open_spark
from api.cli.segments import newest_snapshot
from api.settings import Settings
from offers import selectors
from offers.selectors import Selector

console = Console(stderr=True)


@click.group("incidents")
def group() -> None:
    """Incidents: decide them offline with the same engine the server runs."""


@group.command("apply")
@click.argument("incident_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["summary", "json", "ndjson", "parquet"]),
    default=None,
    help="summary: one line per customer (segment, perk); json, ndjson, parquet: every "
    "decision in full. Default: summary, or json with -o.",
)
@click.option("--json", "as_json", is_flag=True, help="Print every decision as JSON.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write decisions here instead of standard output (required for parquet).",
)
@click.option("--dry-run", is_flag=True, help="Decide without recording anything.")
@engine_options
@click.option(
    "--profiles",
    help="With --engine spark: the profile dataset Spark reads (Parquet file, folder or "
    "glob; default: the newest snapshot).",
)
@click.option(
    "--everyone",
    is_flag=True,
    help="Every profile is affected (a national outage; with --engine spark, every profile "
    "of the dataset); the file's customers are ignored.",
)
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="COLUMN=VALUE[,VALUE…]",
    help="Affect the customers whose profile COLUMN holds one of the values (repeat for "
    "several columns: all must hold), e.g. --where home_airport=TPE --where tier=gold,platinum; "
    "the file's customers are ignored.",
)
@click.option(
    "--ids",
    "ids_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Affect the customers of this Parquet (customer_id column) or NDJSON file; the "
    "file's customers are ignored.",
)
@click.pass_obj
def apply(
    settings: Settings,
    incident_file: Path,
    fmt: str | None,
    as_json: bool,
    output: Path | None,
    dry_run: bool,
    engine: Engine,
    spark_master: str | None,
    profiles: str | None,
    everyone: bool,
    where: tuple[str, ...],
    ids_file: Path | None,
) -> None:
    """Decide INCIDENT_FILE (the JSON body of POST /v1/incidents) and record it; print who
    got what (customer, segment, perk), or every decision with --json.

    Repeating the same file issues nothing twice, exactly as the HTTP API does. With
    --engine spark the engine runs on Spark's executors over a profile dataset; the
    decisions are the same and are recorded in the data folder's ledger once.
    """
    fmt = "json" if as_json else fmt or ("json" if output is not None else "summary")
    if fmt == "summary" and output is not None:
        raise click.UsageError("the summary is printed: use --format json/ndjson/parquet with -o")
    from api.cli.decision_files import write_decisions
    from api.cli.incident_folder import Folder
    from api.http.wire import IncidentCreate
    from offers.flow import apply_update

    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs -o FILE")
    if engine == "local" and profiles is not None:
        raise click.UsageError("--profiles needs --engine spark")
    flagged = _selector(everyone, where, ids_file)
    if engine == "spark" and (where or ids_file):
        raise click.UsageError("--where and --ids need --engine local")
    try:
        body = incident_file.read_bytes()
        if flagged is None:
            request = msgspec.json.decode(body, type=IncidentCreate)
        else:
            raw = msgspec.json.decode(body)
            if isinstance(raw, dict):
                raw["customers"] = {"everyone": True}  # the flag's selector replaces them
            request = msgspec.convert(raw, IncidentCreate)
    except msgspec.MsgspecError as exc:
        raise click.ClickException(f"{incident_file}: {exc}") from exc
    named = request.customers
    listed = named if isinstance(named, list) else None
    selector = flagged
    if selector is None and not isinstance(named, list):
        selector = named.selector(settings.data_dir / "uploads")
    spark = open_spark(spark_master) if engine == "spark" else None
    with console.status("opening the data folder…"):
        folder = Folder(settings, lambda message: console.log(message), profiles=spark is None)
    try:
        with console.status("deciding…") as status:
            if spark is None:
                customers: list[str] | Callable[[], pl.Series]
                if selector is None:
                    customers = listed or []
                else:
                    selectors.check(selector, folder.runtime.book.frame.schema)
                    customers = partial(selectors.resolve, selector, folder.runtime.book.frame)
                outcome = apply_update(
                    folder.parts(),
                    request.incident(),
                    customers,
                    datetime.now(UTC),
                    dry_run=dry_run or request.dry_run,
                    budget=request.budget,
                    progress=lambda message, done: status.update(f"{message} ({done:.0%})"),
                )
            else:
                from offers.spark_flow import apply_on_spark, read_profiles
                from segmentation.spark_segments import traits_on_spark

                runtime = folder.runtime
                path = profiles or str(newest_snapshot(settings))
                dataset = read_profiles(spark, path, runtime.model)
                runtime.use_traits(
                    traits_on_spark(spark, dataset.frame, dataset.schema, runtime.model)
                )
                outcome = apply_on_spark(
                    spark,
                    runtime.parts(),
                    dataset,
                    request.incident(),
                    None if everyone else listed,
                    datetime.now(UTC),
                    dry_run=dry_run or request.dry_run,
                    budget=request.budget,
                )
        console.print(
            f"incident {outcome.incident_id}: step {outcome.step}, {outcome.issued:,} new "
            f"decisions, {outcome.count:,} at this step, cost {outcome.cost:,.2f}"
            + (" (dry run: nothing recorded)" if outcome.dry_run else "")
        )
        if fmt == "summary":
            _summary(next(outcome.pages(SUMMARY_LINES), None), outcome.count)
            return
        write_decisions(outcome, fmt, output)
    finally:
        folder.close()


def _selector(everyone: bool, where: tuple[str, ...], ids_file: Path | None) -> Selector | None:
    """The selector the flags name, if any (one at most)."""
    if everyone + bool(where) + (ids_file is not None) > 1:
        raise click.UsageError("give one of --everyone, --where, --ids")
    if everyone:
        return Selector(everyone=True)
    if ids_file is not None:
        return Selector(ids_file=str(ids_file))
    if not where:
        return None
    columns: dict[str, Any] = {}
    for item in where:
        column, sep, values = item.partition("=")
        if not sep or not column.strip() or not values:
            raise click.BadParameter(f"{item!r}: write COLUMN=VALUE[,VALUE…]", param_hint="--where")
        columns[column.strip()] = values.split(",")
    return Selector(where=columns)


#: Lines the summary prints before it says how many more there are.
SUMMARY_LINES = 50


def _summary(shown: Any, total: int) -> None:
    """`c000001 duty-free-shopper dutyfree-10`, one line per customer decided at this step
    (the first `SUMMARY_LINES` by customer id, then how many more)."""
    if shown is None:
        return
    width = max([len(s or "-") for s in shown["segment"].to_list()] + [1])
    for customer, segment, perk, holdout in shown.select(
        "customer_id", "segment", "perk_id", "holdout"
    ).iter_rows():
        what = perk or ("no perk (holdout)" if holdout else "no perk")
        click.echo(f"{customer} {(segment or '-'):<{width}} {what}")
    if total > shown.height:
        more = total - shown.height
        click.echo(f"… {more:,} more: --json prints every decision, -o FILE writes them")
