"""`makegood demo`: one delayed flight told as a story, on the embedded defaults."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from api.runtime import Runtime, open_runtime
from api.settings import Settings
from offers.catalog import coverage
from offers.flow import Outcome, apply_update
from offers.incidents import FlightFacts, Incident

DELAYS = (30, 60, 100, 140, 190)
PASSENGERS = 300
FLIGHT = "MG123"
#: Why a customer got no perk at a step, read from the decision's reasons
#: (offers.decide.reasons words each drop of offers.decide.eligibility.DROPS), first match.
WHY_NONE = (
    ("holdout: ", "holdout"),
    ("was already issued in this incident", "already holds it"),
    ("adds no value over", "holds a better one"),
    ("contact cap: ", "contact cap"),
    ("times per customer within", "rule limit"),
    ("stock: no ", "out of stock"),
    ("budget: the incident budget", "budget"),
    ("no offer rule matched", "no rule"),
)


def _incident_id(runtime: Runtime) -> str:
    """A fresh id per run, so the demo can be replayed in the same data folder."""
    base = f"{FLIGHT}-{datetime.now(UTC):%Y-%m-%d}"
    n, candidate = 1, base
    while runtime.ledger.incident(candidate) is not None:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _segment_table(outcome: Outcome, passengers: pl.DataFrame) -> Table:
    issued = outcome.decisions.with_columns(_why=_why_none())
    table = Table(
        title=f"step {outcome.step}: delay {outcome.delay_minutes} min, "
        f"{outcome.issued} decisions issued",
        title_justify="left",
        caption="no perk: why, counted per segment (holdout: the message and the law, no perk, "
        "to measure what perks do)",
        caption_justify="left",
    )
    table.add_column("segment", no_wrap=True)
    for col in ("pax", "apology", "update"):
        table.add_column(col, justify="right")
    table.add_column("perks issued / why none", overflow="fold", min_width=14)
    table.add_column("cost EUR", justify="right", no_wrap=True)
    by_segment = (
        passengers.group_by("segment")
        .len("passengers")
        .join(
            issued.group_by("segment").agg(
                apologies=(pl.col("message_kind") == "apology").sum(),
                updates=(pl.col("message_kind") == "update").sum(),
                cost=pl.col("charged_cost").fill_null(0).sum(),
                perks=pl.col("perk_id").drop_nulls().value_counts(sort=True),
                why=pl.col("_why").drop_nulls().value_counts(sort=True),
            ),
            on="segment",
            how="left",
        )
        .sort("passengers", descending=True)
    )
    for row in by_segment.iter_rows(named=True):  # one row per segment, for display only
        perks = [f"{p['perk_id']} x{p['count']}" for p in row["perks"] or []]
        why = [f"{w['_why']} x{w['count']}" for w in row["why"] or []]
        if why:
            perks.append("no perk: " + ", ".join(why))
        table.add_row(
            row["segment"],
            str(row["passengers"]),
            str(row["apologies"] or 0),
            str(row["updates"] or 0),
            ", ".join(perks) or "-",
            f"{row['cost'] or 0:,.2f}",
        )
    return table


def _why_none() -> pl.Expr:
    """For a decision without a perk, the first `WHY_NONE` label its reasons carry."""
    reasons = pl.col("reasons").fill_null("")
    why: pl.Expr = pl.lit("other")
    for words, label in reversed(WHY_NONE):
        why = pl.when(reasons.str.contains(words, literal=True)).then(pl.lit(label)).otherwise(why)
    return pl.when(pl.col("perk_id").is_null()).then(why)


def _samples(outcome: Outcome) -> list[str]:
    """Two messages in different languages, preferring ones that carry a perk."""
    frame = outcome.decisions.filter(pl.col("text").is_not_null()).sort(
        pl.col("perk_id").is_null(), "customer_id"
    )
    picked = frame.unique("language", keep="first", maintain_order=True).head(2)
    return [f"[{r['language']}, {r['channel']}] {r['text']}" for r in picked.iter_rows(named=True)]


def run_demo(settings: Settings, console: Console) -> None:
    started = time.perf_counter()
    console.rule("[bold]makegood demo[/bold]")
    console.print(f"data folder: {settings.data_dir}")
    with console.status("opening the data folder…") as status:

        def step(message: str) -> None:
            status.update(message)
            console.log(message)

        runtime = open_runtime(settings, step)
    try:
        _play(runtime, console)
    finally:
        runtime.close()
    console.print(f"[dim]done in {time.perf_counter() - started:.1f} s[/dim]")


def _play(runtime: Runtime, console: Console) -> None:
    card = runtime.model.card
    console.print(
        f"segmentation {card.version}: "
        + ", ".join(f"{s.name} ({s.size:,})" for s in card.segments)
    )
    name, version = runtime.table_version
    console.print(f"offer table {name} v{version}: {len(runtime.table().rules)} rules")
    raw = runtime.tables.raw("flight_delay")
    if raw is not None:
        reach = coverage(raw, runtime.traits)
        console.print(
            "personas: "
            + ", ".join(
                f"{s.segment} = {s.persona or 'no persona (catch-all rules)'}"
                for s in reach.segments
            )
        )
    passengers = runtime.book.frame.sample(PASSENGERS, seed=2026, shuffle=True)
    ids = passengers["customer_id"].to_list()
    incident_id = _incident_id(runtime)
    occurred = datetime.now(UTC)
    console.print(
        Panel(
            f"Flight {FLIGHT} with {PASSENGERS} passengers is late. "
            f"Incident {incident_id}; updates at {', '.join(map(str, DELAYS))} min.",
            title="incident",
        )
    )
    total = 0.0
    outcome = None
    for delay in DELAYS:
        incident = Incident(
            incident_id=incident_id,
            kind="flight_delay",
            occurred_at=occurred,
            facts=FlightFacts(delay_minutes=delay, flight=FLIGHT),
        )
        outcome = apply_update(runtime.parts(), incident, ids, datetime.now(UTC))
        total += outcome.cost
        console.print(_segment_table(outcome, passengers))
        for line in _samples(outcome):
            console.print(f"  {escape(line)}", highlight=False)
        console.print(f"  cost so far: [bold]EUR {total:,.2f}[/bold]\n")
    assert outcome is not None
    console.rule("replay")
    replay = apply_update(runtime.parts(), incident, ids, datetime.now(UTC))
    rows = runtime.ledger.count(incident_id)
    same = replay.decisions.equals(outcome.decisions)
    console.print(
        f"Replaying the {DELAYS[-1]} min update: [bold]{replay.issued}[/bold] new decisions, "
        f"same answer as before: {'yes' if same else 'NO'}. The ledger holds {rows:,} rows "
        f"for this incident: one per passenger per step."
    )
