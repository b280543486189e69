"""`makegood segments …`: segmentation versions for analysts.

Commands are thin: each opens the data folder's registry, calls one domain function and
prints the answer. Guard rails that need the published offer table (promote, rollback,
rename) get the segment names its rules use from `segment_names_used`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import polars as pl
from rich.console import Console
from rich.table import Table

from api.cli.coverage import report_coverage
from api.cli.engine import Engine, engine_options, open_spark
from api.cli.folder import folder_traits
from api.cli.who import current_user
from api.settings import Settings
from segmentation.profiles import OBJECTION_COLUMN

if TYPE_CHECKING:
    from segmentation.drift import DriftReport
    from segmentation.model import ModelCard, Segmentation
    from segmentation.registry import Registry

console = Console()

__all__ = ["group", "newest_snapshot", "used_names"]


def used_names(settings: Settings) -> dict[str, list[str]]:
    """Names the published offer table relies on; none when there is no ledger yet."""
    from offers.ledger import Ledger, create_engine, live_segment_names, upgrade

    if settings.database_url is None and not (settings.data_dir / "makegood.db").exists():
        return {}
    engine = create_engine(settings.db_url)
    try:
        upgrade(engine)
        return live_segment_names(Ledger(engine))
    finally:
        engine.dispose()


def newest_snapshot(settings: Settings) -> Path:
    """The newest profile snapshot in the data folder (the one a server would load)."""
    snapshots = sorted((settings.data_dir / "profiles").glob("snapshot-*.parquet"))
    if not snapshots:
        raise LookupError(
            f"no profile snapshot in {settings.data_dir / 'profiles'}: "
            "import profiles first or pass --profiles FILE"
        )
    return snapshots[-1]


def _registry(settings: Settings) -> Registry:
    from segmentation.registry import Registry

    return Registry(settings.data_dir / "models")


@contextmanager
def _progress() -> Iterator[tuple[Any, Any]]:
    """(say, advance) callbacks that drive a rich progress bar."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def say(message: str) -> None:
            bar.update(task, description=message)
            console.print(f"[dim]{message}[/dim]")

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield say, advance


def _segments_table(card: ModelCard) -> Table:
    table = Table(title=f"segmentation {card.version}", title_justify="left")
    table.add_column("segment", no_wrap=True, style="bold")
    table.add_column("description")
    table.add_column("customers", justify="right")
    table.add_column("share", justify="right")
    table.add_column("origin", no_wrap=True)
    for s in sorted(card.segments, key=lambda s: -s.size):
        origin = "analyst" if s.renamed else "carried over" if s.carried else "new"
        table.add_row(
            s.name, s.description, f"{s.size:,}", f"{s.size / max(card.rows, 1):.1%}", origin
        )
    return table


def _print_card(card: ModelCard, active: str | None) -> None:
    state = " [green](active)[/green]" if card.version == active else ""
    console.print(
        f"[bold]{card.version}[/bold]{state}: {card.algorithm}, k={card.k}, "
        f"{card.rows:,} rows (fitted on {card.sample_rows:,}), silhouette {card.silhouette:.3f}, "
        f"parent {card.parent or '-'}, created {card.created_at:%Y-%m-%d %H:%M} UTC"
    )
    console.print(f"data {card.data_fingerprint} from {card.source}")
    if card.k_rule:
        console.print(f"k: {card.k_rule}", markup=False)
    if card.objectors:
        console.print(f"left out {card.objectors:,} customers who objected to profiling")
    console.print("features: " + ", ".join(card.spec.outputs()))
    console.print(_segments_table(card))
    if card.vanished:
        console.print(
            f"[red]names that vanished since {card.parent}:[/red] " + ", ".join(card.vanished)
        )


def _read_profiles(path: Path, model: Segmentation, limit: int = 1_000_000) -> pl.DataFrame:
    """The columns a report needs (features and protected ones), at most `limit` rows."""
    frame = pl.scan_parquet(path)
    names = frame.collect_schema().names()
    wanted = {*model.card.spec.columns(), *model.card.spec.protected_columns(), OBJECTION_COLUMN}
    columns = [c for c in names if c in wanted]
    rows = frame.select(pl.len()).collect().item()
    profiles = frame.select(columns).collect()
    return profiles if rows <= limit else profiles.sample(n=limit, seed=0)


@click.group("segments")
def group() -> None:
    """Segmentations: train, list, show, rename, promote, roll back, drift, report."""


@group.command("train")
@click.option(
    "--profiles",
    help="Parquet profiles (default: the newest snapshot in the data folder); with "
    "--engine spark also a folder, glob or URL Spark reads (s3a://…).",
)
@click.option(
    "--k",
    type=click.IntRange(2, 50),
    help="Segments (default: best silhouette, 3-8, at most the distinct profile patterns).",
)
@click.option("--spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option(
    "--model",
    "algorithm",
    type=click.Choice(["kmeans", "gmm"]),
    default="kmeans",
    show_default=True,
)
@click.option("--promote", is_flag=True, help="Make the new version active if it is safe.")
@engine_options
@click.option(
    "--assignments",
    help="With --engine spark: write every customer's segment here (Parquet folder).",
)
@click.pass_obj
def train_cmd(
    settings: Settings,
    profiles: str | None,
    k: int | None,
    spec: Path | None,
    seed: int,
    algorithm: str,
    promote: bool,
    engine: Engine,
    spark_master: str | None,
    assignments: str | None,
) -> None:
    """Train a new version; names carry over from the active version.

    With --engine spark, Spark reads and samples the profiles, scikit-learn fits here, and
    Spark's executors assign every customer for the segment sizes.
    """
    from segmentation.model import train
    from segmentation.spec import load_spec

    if engine == "local" and assignments is not None:
        raise click.UsageError("--assignments needs --engine spark")
    spark = open_spark(spark_master) if engine == "spark" else None
    if profiles is not None and spark is None and not Path(profiles).is_file():
        raise click.BadParameter(f"File {profiles!r} does not exist.", param_hint="--profiles")
    source = Path(profiles) if profiles else newest_snapshot(settings)
    feature_spec = load_spec(spec) if spec is not None else None
    registry = _registry(settings)
    active = registry.active()
    parent = registry.load(active) if active is not None else None
    with _progress() as (say, advance):
        common: dict[str, Any] = {
            "version": registry.next_version(),
            "k": k,
            "seed": seed,
            "spec": feature_spec,
            "algorithm": "gmm" if algorithm == "gmm" else "kmeans",
            "parent": parent,
            "progress": say,
        }
        if spark is not None:
            from segmentation.spark_segments import train_on_spark

            sources = [profiles or str(source)]
            model = train_on_spark(spark, sources, assignments=assignments, **common)
        else:
            model = train(source, advance=advance, **common)
        registry.save(model)
    console.print(f"saved segmentation {model.card.version}")
    _print_card(model.card, active)
    if promote:
        before = folder_traits(settings)
        registry.promote(model.card.version, used_names(settings), current_user())
        console.print(f"[green]{model.card.version} is now active[/green]")
        report_coverage(settings, before)


@group.command("list")
@click.pass_obj
def list_cmd(settings: Settings) -> None:
    """All versions, newest last; the active one is marked."""
    registry = _registry(settings)
    active = registry.active()
    table = Table(title_justify="left")
    table.add_column("version", no_wrap=True)
    table.add_column("created (UTC)", no_wrap=True)
    table.add_column("model")
    table.add_column("k", justify="right")
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("silhouette", justify="right")
    table.add_column("parent", no_wrap=True)
    for card in registry.cards():
        mark = " *" if card.version == active else ""
        table.add_row(
            f"{card.version}{mark}",
            f"{card.created_at:%Y-%m-%d %H:%M}",
            card.algorithm,
            f"{card.k}",
            f"{card.rows:,}",
            f"{card.silhouette:.3f}",
            card.parent or "-",
        )
    if not table.row_count:
        console.print("no segmentation versions yet: makegood segments train")
        return
    console.print(table)
    console.print("* active · segments of a version: makegood segments show VERSION")


@group.command("show")
@click.argument("version")
@click.option("--json", "as_json", is_flag=True, help="Print the model card as JSON.")
@click.pass_obj
def show_cmd(settings: Settings, version: str, as_json: bool) -> None:
    """One version's card: metrics, features and named segments."""
    import msgspec

    registry = _registry(settings)
    card = registry.card(version)
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(card)).decode())
        return
    _print_card(card, registry.active())


@group.command("rename")
@click.argument("version")
@click.argument("old")
@click.argument("new")
@click.option("--description", help="A new one-line description.")
@click.pass_obj
def rename_cmd(
    settings: Settings, version: str, old: str, new: str, description: str | None
) -> None:
    """Rename segment OLD of VERSION to NEW; later versions carry the new name over."""
    registry = _registry(settings)
    registry.rename(version, old, new, description, used_names(settings), current_user())
    console.print(f"{version}: {old} is now {new}")


@group.command("promote")
@click.argument("version")
@click.pass_obj
def promote_cmd(settings: Settings, version: str) -> None:
    """Make VERSION active (refused if it drops a name a live offer table uses); shows which
    segments each live table reaches, and warns when that coverage drops."""
    before = folder_traits(settings)
    _registry(settings).promote(version, used_names(settings), current_user())
    console.print(f"{version} is now active; running servers pick it up on their next request")
    report_coverage(settings, before)


@group.command("rollback")
@click.pass_obj
def rollback_cmd(settings: Settings) -> None:
    """Re-activate the version that was active before the current one."""
    before = folder_traits(settings)
    version = _registry(settings).rollback(used_names(settings), current_user())
    console.print(f"rolled back: {version} is active again")
    report_coverage(settings, before)


def _measure(settings: Settings, version: str | None, against: Path | None) -> DriftReport:
    from segmentation.drift import measure_drift

    registry = _registry(settings)
    version = version or registry.active()
    if version is None:
        raise LookupError("no active segmentation: pass --version")
    model = registry.load(version)
    with _progress() as (say, advance):
        source = against or newest_snapshot(settings)
        say(f"measuring drift of {source.name} against {version}")
        return measure_drift(model, source, advance=advance)


@group.command("drift")
@click.option(
    "--against",
    type=click.Path(exists=True, path_type=Path),
    help="Newer profiles (default: the newest snapshot in the data folder).",
)
@click.option("--version", help="Segmentation version (default: the active one).")
@click.pass_obj
def drift_cmd(settings: Settings, against: Path | None, version: str | None) -> None:
    """Population stability index per feature and shift of segment shares; > 0.2 flagged."""
    report = _measure(settings, version, against)
    features = Table(title=f"feature drift vs {report.version} ({report.rows:,} rows)")
    features.add_column("feature", no_wrap=True)
    features.add_column("PSI", justify="right")
    features.add_column("")
    for f in report.features:
        features.add_row(f.name, f"{f.psi:.3f}", "[red]drift[/red]" if f.flagged else "ok")
    console.print(features)
    shares = Table(title=f"segment shares (PSI {report.segment_psi:.3f})")
    for column in ("segment", "training", "now", "shift"):
        shares.add_column(column, justify="left" if column == "segment" else "right")
    for s in report.segments:
        shares.add_row(s.name, f"{s.train_share:.1%}", f"{s.new_share:.1%}", f"{s.shift:+.1%}")
    console.print(shares)
    verdict = "[red]drift flagged: consider retraining[/red]" if report.flagged else "stable"
    console.print(verdict)


@group.command("report")
@click.argument("version")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--profiles",
    type=click.Path(exists=True, path_type=Path),
    help="Profiles to plot (default: the training file, else the newest snapshot).",
)
@click.option(
    "--against",
    type=click.Path(exists=True, path_type=Path),
    help="Newer profiles for the drift charts (default: the newest snapshot).",
)
@click.pass_obj
def report_cmd(
    settings: Settings,
    version: str,
    output: Path,
    profiles: Path | None,
    against: Path | None,
) -> None:
    """Write one self-contained HTML report (sizes, z-score heatmap, PCA map, drift, splits)."""
    from segmentation.report import render_report, write_report

    registry = _registry(settings)
    model = registry.load(version)
    trained_on = Path(model.card.source)
    source = profiles or (trained_on if trained_on.exists() else newest_snapshot(settings))
    snapshots = sorted((settings.data_dir / "profiles").glob("snapshot-*.parquet"))
    drift = _measure(settings, version, against or (snapshots[-1] if snapshots else source))
    frame = _read_profiles(source, model)
    write_report(render_report(model, frame, drift), output)
    console.print(f"wrote {output} ({output.stat().st_size / 1024:,.0f} KiB)")
