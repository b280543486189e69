"""`makegood incidents …`: the incident engine, offline, against the data folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
import msgspec
from rich.console import Console

from api.cli.engine import Engine, engine_options, open_spark
from api.cli.segments import newest_snapshot
from api.settings import Settings

console = Console(stderr=True)


@click.group("incidents")
def group() -> None:
    """Incidents: decide them offline with the same engine the server runs."""


@group.command("apply")
@click.argument("incident_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "ndjson", "parquet"]),
    default="json",
    show_default=True,
)
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
    help="With --engine spark: every profile of the dataset is affected (a national outage); "
    "the file's customers are ignored.",
)
@click.pass_obj
def apply(
    settings: Settings,
    incident_file: Path,
    fmt: str,
    output: Path | None,
    dry_run: bool,
    engine: Engine,
    spark_master: str | None,
    profiles: str | None,
    everyone: bool,
) -> None:
    """Decide INCIDENT_FILE (the JSON body of POST /v1/incidents) and record it.

    Repeating the same file issues nothing twice, exactly as the HTTP API does. With
    --engine spark the engine runs on Spark's executors over a profile dataset; the
    decisions are the same and are recorded in the data folder's ledger once.
    """
    from api.http.wire import IncidentCreate, decision_rows
    from api.runtime import open_runtime
    from offers.flow import apply_update

    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs -o FILE")
    if engine == "local" and (profiles is not None or everyone):
        raise click.UsageError("--profiles and --everyone need --engine spark")
    try:
        request = msgspec.json.decode(incident_file.read_bytes(), type=IncidentCreate)
    except msgspec.DecodeError as exc:
        raise click.ClickException(f"{incident_file}: {exc}") from exc
    spark = open_spark(spark_master) if engine == "spark" else None
    with console.status("opening the data folder…"):
        runtime = open_runtime(
            settings, lambda message: console.log(message), profiles=spark is None
        )
    try:
        with console.status("deciding…"):
            if spark is None:
                outcome = apply_update(
                    runtime.parts(),
                    request.incident(),
                    request.customers,
                    datetime.now(UTC),
                    dry_run=dry_run or request.dry_run,
                    budget=request.budget,
                )
            else:
                from offers.spark_flow import apply_on_spark, read_profiles

                outcome = apply_on_spark(
                    spark,
                    runtime.parts(),
                    read_profiles(spark, profiles or str(newest_snapshot(settings)), runtime.model),
                    request.incident(),
                    None if everyone else request.customers,
                    datetime.now(UTC),
                    dry_run=dry_run or request.dry_run,
                    budget=request.budget,
                )
    finally:
        runtime.close()
    console.print(
        f"incident {outcome.incident_id}: step {outcome.step}, {outcome.issued:,} new "
        f"decisions, {outcome.decisions.height:,} at this step, cost {outcome.cost:,.2f}"
        + (" (dry run: nothing recorded)" if outcome.dry_run else "")
    )
    if fmt == "parquet":
        assert output is not None
        outcome.decisions.drop("followups").write_parquet(output)
        return
    rows = decision_rows(outcome.decisions)
    if fmt == "ndjson":
        data = b"".join(msgspec.json.encode(r) + b"\n" for r in rows)
    else:
        data = msgspec.json.format(msgspec.json.encode(rows)) + b"\n"
    if output is None:
        click.echo(data.decode("utf-8"), nl=False)
    else:
        output.write_bytes(data)
