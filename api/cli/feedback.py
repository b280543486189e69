"""`makegood feedback import|simulate` and `makegood reports offers`: the analyst's loop.

`simulate_cmd` is a plain click command, so `makegood offers simulate` can be the same
command attached to the offers group.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
import msgspec
import polars as pl
from rich.console import Console
from rich.table import Table

from api.cli.folder import folder_traits
from api.settings import Settings
from offers.catalog import OfferTable, decode_table, read_table_file
from offers.learning import (
    Estimate,
    FeedbackEvent,
    GroupEstimate,
    Simulation,
    events_frame,
    parse_since,
    record_feedback,
    simulate,
)
from offers.ledger import Ledger, NotFound, Store
from segmentation.html import percent, points, signed_money

console = Console()
FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_AT = re.compile(r"`\$\[(\d+)\]\.?([^`]*)`")


@contextmanager
def _ledger(settings: Settings) -> Iterator[Ledger]:
    from offers.ledger import create_engine, upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.db_url)
    try:
        upgrade(engine)
        yield Ledger(engine)
    finally:
        engine.dispose()


def read_events(path: Path) -> list[FeedbackEvent]:
    """Events from JSON (a list, or {"events": [...]}), NDJSON, CSV or Parquet.

    A malformed event stops the import before anything is stored, naming its position.
    """
    suffix = path.suffix.lower()
    try:
        if suffix in (".ndjson", ".jsonl"):
            lines = [line for line in path.read_bytes().splitlines() if line.strip()]
            return msgspec.json.decode(b"[" + b",".join(lines) + b"]", type=list[FeedbackEvent])
        if suffix == ".json":
            raw = msgspec.json.decode(path.read_bytes())
            items = raw.get("events", raw) if isinstance(raw, dict) else raw
            return msgspec.convert(items, list[FeedbackEvent])
        if suffix in (".csv", ".parquet"):
            frame = pl.read_csv(path) if suffix == ".csv" else pl.read_parquet(path)
            rows = [{k: v for k, v in r.items() if v is not None} for r in frame.to_dicts()]
            return msgspec.convert(rows, list[FeedbackEvent], strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        found = _AT.search(text)
        if found is None:
            raise ValueError(f"{path.name}: {text}") from exc
        what = text[: found.start()].removesuffix(" - at ").strip()
        field = f", field {found[2]}" if found[2] else ""
        raise ValueError(f"{path.name}: event {int(found[1]) + 1}{field}: {what}") from exc
    except msgspec.DecodeError as exc:
        raise ValueError(f"{path.name}: not valid JSON: {exc}") from exc
    raise click.BadParameter("use .json, .ndjson, .jsonl, .csv or .parquet", param_hint="FILE")


@click.group("feedback")
def group() -> None:
    """Feedback about decisions: import events, simulate a draft table on the logs."""


@group.command("import")
@click.argument("file", type=FILE)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every event's answer here as NDJSON.",
)
@click.pass_obj
def import_cmd(settings: Settings, file: Path, output: Path | None) -> None:
    """Store the events of FILE; each is accepted, a duplicate or about an unknown decision."""
    events = read_events(file)
    with _ledger(settings) as ledger:
        results = record_feedback(ledger, events_frame(events), datetime.now(UTC))
    counts = dict(results.group_by("status").len().iter_rows())
    console.print(
        f"{file.name}: {len(events)} events: {counts.get('accepted', 0)} accepted, "
        f"{counts.get('duplicate', 0)} duplicate, "
        f"{counts.get('unknown_decision', 0)} unknown decision"
    )
    unknown = results.filter(pl.col("status") == "unknown_decision").head(10)
    for row in unknown.iter_rows(named=True):
        console.print(f"  unknown decision {row['decision_id']} (event {row['event_id']})")
    if output is not None:
        results.write_ndjson(output)
        console.print(f"answers written to {output}")


def _cell(e: Estimate, share: bool = True) -> str:
    if e.value is None or e.low is None or e.high is None:
        return "no support"
    if share:
        return f"{e.value:.1%} [{e.low:.1%}, {e.high:.1%}]"
    return f"{e.value:.2f} [{e.low:.2f}, {e.high:.2f}]"


def _row(table: Table, g: GroupEstimate) -> None:
    thin = f" [yellow]too little data[/] ({g.effective_size:.0f})" if g.too_little_data else ""
    table.add_row(
        g.segment or "[bold]total[/bold]",
        f"{g.decisions:,}",
        f"{g.matched:,}{thin}",
        f"{g.logged_acceptance:.1%}",
        _cell(g.acceptance["ips"]),
        _cell(g.acceptance["snips"]),
        _cell(g.acceptance["dr"]),
        _cell(g.cost["dr"], share=False),
        f"{g.issued_cost:,.2f}",
    )


def _interval(e: Estimate, fmt: Callable[[float], str]) -> str:
    if e.value is None:
        return "not enough data"
    if e.low is None or e.high is None:
        return fmt(e.value)
    return f"{fmt(e.value)} (95% interval {fmt(e.low)} to {fmt(e.high)})"


def headline(g: GroupEstimate, currency: str, against: bool) -> str:
    """One segment in words: acceptance and cost per customer, and the change against live."""
    who = g.segment or "all customers"
    if not g.supported:
        said = "not enough data: the draft gives perks these customers were never given"
    elif g.too_little_data:
        said = f"not enough data: about {g.effective_size:.0f} comparable decisions, 30 needed"
    else:
        said = (
            f"acceptance {_interval(g.acceptance['dr'], percent)}, cost per customer "
            f"{_interval(g.cost['dr'], lambda x: f'{currency} {x:,.2f}')}"
        )
    if against:
        if g.unchanged:
            said += "; same perks as the live table"
        elif g.change_acceptance.value is None:
            said += "; change against the live table: not enough data"
        else:
            said += (
                f"; against the live table {_interval(g.change_acceptance, points)}, "
                f"{_interval(g.change_cost, lambda x: f'{currency} {signed_money(x)}')}"
            )
    return f"{who}: {said}"


def print_simulation(sim: Simulation) -> None:
    against = f" against the live table of {sim.against}" if sim.against else ""
    console.print(
        f"[bold]{sim.table}[/bold]: the draft{against}, replayed on {sim.decisions:,} "
        f"decisions since {sim.since:%Y-%m-%d} (acceptance: share of customers who redeem; "
        f"cost per customer: their redeemed perks, in {sim.currency})"
    )
    for g in [*sim.segments, sim.total]:
        console.print("  " + headline(g, sim.currency, sim.against is not None), highlight=False)
    table = Table(
        "segment",
        "decisions",
        "matched",
        "logged acc.",
        "acceptance IPS",
        "acceptance SNIPS",
        "acceptance DR",
        "cost/decision DR",
        "issued cost",
        title="details for analysts: the three estimators side by side",
    )
    for g in sim.segments:
        _row(table, g)
    _row(table, sim.total)
    console.print(table)
    for u in sim.no_support:
        console.print(
            f"[yellow]no support[/]: the draft gives {u.perk_id} to {u.segment} "
            f"({u.decisions:,} decisions); the logs never did, so no estimate is given"
        )
    console.print(f"[dim]{sim.method}[/dim]")


@group.command("synth")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--since", default="90d", show_default=True)
@click.option("--seed", default=7, show_default=True, type=int)
@click.pass_obj
def synth_cmd(settings: Settings, output: Path, since: str, seed: int) -> None:
    """Write simulated feedback (NDJSON) for the ledger's decisions, drawn from a hidden
    truth per segment and perk: for trying the loop on a data folder without real events."""
    from offers.learning import load_outcomes, make_world

    now = datetime.now(UTC)
    with _ledger(settings) as ledger:
        decided = load_outcomes(ledger, now - parse_since(since))
        live = Store(ledger.engine).live()
    if live is None:
        raise click.ClickException("no offer table is published")
    segments = decided["segment"].drop_nulls().unique().to_list()
    world = make_world(segments, seed, table=decode_table(live.body))
    events = world.feedback(decided, now)
    events.write_ndjson(output)
    console.print(f"wrote {events.height:,} simulated events about {decided.height:,} decisions")


@click.command("simulate")
@click.argument("draft", type=FILE)
@click.option("--since", default="90d", show_default=True, help="Logged span: 90d, 12w, 36h.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def simulate_cmd(settings: Settings, draft: Path, since: str, as_json: bool) -> None:
    """Replay logged decisions under DRAFT (TOML, CSV or XLSX): acceptance and cost per
    segment with IPS, SNIPS and DR estimates; nothing is written."""
    table, _ = read_table_file(draft)
    span = parse_since(since)
    with _ledger(settings) as ledger:
        snapshots = sorted((settings.data_dir / "profiles").glob("snapshot-*.parquet"))

        def profiles(ids: Sequence[str]) -> pl.DataFrame:
            wanted = pl.Series("customer_id", list(ids), dtype=pl.String)
            if not snapshots:
                return wanted.to_frame()
            scan = pl.scan_parquet(snapshots[-1])
            return scan.filter(pl.col("customer_id").is_in(wanted.implode())).collect()

        try:
            live: OfferTable | None = Store(ledger.engine).table(table.name, "live")
        except NotFound:
            live = None  # never published: no change to measure
        served = folder_traits(settings)
        traits = served[2] if served is not None else None
        sim = simulate(ledger, table, datetime.now(UTC), span, profiles, traits=traits, live=live)
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(sim)).decode())
    else:
        print_simulation(sim)


group.add_command(simulate_cmd)


@click.group("reports")
def reports_group() -> None:
    """Reports for analysts, as static HTML."""


@reports_group.command("offers")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--since", default="90d", show_default=True, help="Span to report: 90d, 12w.")
@click.pass_obj
def offers_report_cmd(settings: Settings, output: Path, since: str) -> None:
    """Acceptance and rating by segment and perk over time, lift over holdout, cost per
    accepted perk, complaint rate after incidents: one HTML file with inline charts."""
    from offers.learning import render_offers_report, write_report

    span = parse_since(since)
    with _ledger(settings) as ledger:
        html = render_offers_report(ledger, datetime.now(UTC), span)
    write_report(html, output)
    console.print(f"wrote {output}")
