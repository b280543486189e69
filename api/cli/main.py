"""The `makegood` command line: thin commands over the domain packages."""

from __future__ import annotations

import logging
import logging.config
import os
import shutil
import socket
import sqlite3
from pathlib import Path
from typing import Any

import click
import msgspec
from rich.console import Console
from sqlalchemy.exc import DBAPIError

from api.datadir import check_writable, write_failure
from api.limits import RATE_FILE_ENV
from api.settings import Settings

console = Console()

MAX_HEADER_BYTES = 64 * 1024
"""Largest request line plus headers `serve` reads; a longer one is answered 400 at once."""


class _Group(click.Group):
    """Turns domain errors into one `Error: …` line and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except (DBAPIError, sqlite3.Error) as exc:  # a read-only or full folder, a database down
            # bulk writes go through the sqlite3 driver directly, the rest through SQLAlchemy
            message = f"database: {exc.orig if isinstance(exc, DBAPIError) else exc}"
            raise click.ClickException(message + _folder_hint(ctx, exc)) from exc
        except (ValueError, LookupError, OSError, RuntimeError, msgspec.MsgspecError) as exc:
            message = str(exc) or type(exc).__name__
            raise click.ClickException(message + _folder_hint(ctx, exc)) from exc


def _folder_hint(ctx: click.Context, exc: Exception) -> str:
    """Names the data folder when the file system refused a write to it."""
    settings = ctx.obj
    if write_failure(exc) is None or not isinstance(settings, Settings):
        return ""
    if settings.database_url is not None and isinstance(exc, (DBAPIError, sqlite3.Error)):
        return ""
    return f" (is the data folder {settings.data_dir} read-only or full?)"


@click.group(cls=_Group)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MAKEGOOD_DATA",
    default="makegood-data",
    show_default=True,
    help="Data folder (SQLite ledger, profiles, models). Env: MAKEGOOD_DATA.",
)
@click.version_option(package_name="makegood")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path) -> None:
    """makegood: apology, perk and legal entitlements for every customer a failure touches."""
    ctx.obj = Settings.from_env(data_dir)


@cli.command()
@click.option("--learn", is_flag=True, help="Watch the engine learn each segment's best perk.")
@click.pass_obj
def demo(settings: Settings, learn: bool) -> None:
    """Play one delayed flight of 300 passengers, step by step, then replay it."""
    if learn:
        from api.cli.demo_learn import run_demo_learn

        run_demo_learn(settings, console)
        return
    from api.cli.demo import run_demo

    run_demo(settings, console)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes; each gets cores / N threads for table work "
    "(POLARS_MAX_THREADS overrides).",
)
@click.pass_obj
def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Serve the HTTP API (OpenAPI at /schema); bootstraps an empty data folder first."""
    import uvicorn

    from api.cli.keys import prepare_keys
    from api.logs import log_config
    from api.runtime import ensure_bootstrapped

    check_writable(settings)  # not at the first incident, and not once per worker
    logging.config.dictConfig(log_config())
    prepare_keys(settings, host, logging.getLogger("makegood").info)  # refuse before any work
    ensure_bootstrapped(settings)  # once, before workers start, so they never race to do it
    os.environ["MAKEGOOD_DATA"] = str(settings.data_dir)
    # every worker (and any other server on this folder and host) draws on the same buckets;
    # hosts sharing the folder over the network keep a file each, never one mapping
    os.environ[RATE_FILE_ENV] = str(settings.data_dir / f".ratelimit-{socket.gethostname()}")
    if workers > 1:
        share_cores(workers)
        # /metrics on any worker sums over all of them
        metrics = settings.data_dir / ".prometheus"
        shutil.rmtree(metrics, ignore_errors=True)
        metrics.mkdir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    uvicorn.run(
        "api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        log_config=log_config(),
        # h11 stops reading a request whose head outgrows the limit; httptools has no limit
        # and would read a 100 MB header for seconds while every other request waits
        http="h11",
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )


def share_cores(workers: int) -> None:
    """Give each worker's polars pool its share of the cores (at least one thread), unless
    POLARS_MAX_THREADS says otherwise; spawned workers read it when they import polars.

    Every worker's pool defaults to all cores, so N workers would start N pools as wide as
    the machine; and a small incident gains nothing from a wide pool while its idle
    threads cost CPU (bench/worker_threads.py: about 1.3x the CPU with two threads).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    os.environ.setdefault("POLARS_MAX_THREADS", str(max(1, (cores or 1) // workers)))


@cli.group()
def db() -> None:
    """The ledger database."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(settings: Settings) -> None:
    """Apply database migrations (SQLite in the data folder or MAKEGOOD_DATABASE_URL)."""
    from offers.ledger import create_engine, upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.db_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    console.print(f"database at {settings.db_label} is up to date")


def _register() -> None:
    """Each area's commands live in their own module; this is the one place that lists them."""
    import api.cli.feedback as cli_feedback
    import api.cli.incidents as cli_incidents
    import api.cli.keys as cli_keys
    import api.cli.messages as cli_messages
    import api.cli.offers as cli_offers
    import api.cli.profiles as cli_profiles
    import api.cli.segments as cli_segments

    modules = (
        cli_profiles,
        cli_segments,
        cli_offers,
        cli_messages,
        cli_incidents,
        cli_keys,
        cli_feedback,
    )
    for module in modules:
        cli.add_command(module.group)
    cli_offers.group.add_command(cli_feedback.simulate_cmd)
    cli.add_command(cli_feedback.reports_group)


_register()


def main() -> None:
    cli.main(prog_name="makegood")
