"""`makegood demo --learn`: the engine finds each segment's best perk in a simulated world.

The customers and segments are the data folder's; the world (a hidden acceptance per
segment and perk, and the feedback drawn from it) is simulated, and so is its ledger: a
temporary SQLite file, so no simulated feedback ever mixes with real data.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from api.runtime import Runtime, open_runtime
from api.settings import Settings
from offers.decide import ContactPolicy, ExploreConfig
from offers.flow import Parts, apply_update
from offers.learning import (
    LearningSource,
    World,
    load_learning,
    make_world,
    record_feedback,
    top_perks,
)
from offers.ledger import Ledger, create_engine, upgrade

INCIDENTS = 20
PAX = 300
SEED = 2026


@dataclass
class Tally:
    """Cumulative regret of the engine and of uniform random choice."""

    engine: float = 0.0
    uniform: float = 0.0


def run_demo_learn(settings: Settings, console: Console, incidents: int = INCIDENTS) -> None:
    started = time.perf_counter()
    console.rule("[bold]makegood demo --learn[/bold]")
    runtime = open_runtime(settings, console.log)
    try:
        with tempfile.TemporaryDirectory(prefix="makegood-world-") as tmp:
            engine = create_engine(f"sqlite:///{Path(tmp) / 'world.db'}")
            try:
                upgrade(engine)
                learn(runtime, Ledger(engine), console, incidents)
            finally:
                engine.dispose()
    finally:
        runtime.close()
    console.print(f"[dim]done in {time.perf_counter() - started:.1f} s[/dim]")


def learn(
    runtime: Runtime, ledger: Ledger, console: Console, incidents: int = INCIDENTS
) -> tuple[World, Tally, pl.DataFrame]:
    """Play `incidents` delayed flights with feedback; return the world, regret, posteriors."""
    segments = runtime.book.frame["segment"].unique().sort().to_list()
    world = make_world(segments, SEED)
    config = ExploreConfig()
    source = LearningSource(ledger, config, ttl=0.0, seed=SEED)
    parts = Parts(
        select_profiles=runtime.book.select,
        unknown_profiles=runtime.book.unknown,
        ledger=ledger,
        table=lambda _kind: world.table,
        book=runtime.messages,
        policy=runtime.policy,
        contact=ContactPolicy(max_perks=100, marketing_contacts_per_window=0),
        learning=source,
    )
    console.print(
        f"A simulated world: {len(segments)} segments, one rule offering a perk and "
        f"{len(world.table.perks) - 1} alternatives of the same value "
        f"({', '.join(p.id for p in world.table.perks)}); each segment secretly prefers one. "
        f"From the first incident {config.share:.0%} of customers get one at random; the "
        "others get the rule's perk until another has "
        f"{config.min_events} delivered decisions and does better. It learns from redemptions."
    )
    tally = Tally()
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    stream = world.incidents(runtime.book.frame["customer_id"], incidents, PAX, start)
    for i, (incident, ids) in enumerate(stream, start=1):
        decided = apply_update(parts, incident, ids, incident.occurred_at).decisions
        record_feedback(
            ledger, world.feedback(decided, incident.occurred_at, i), incident.occurred_at
        )
        engine, uniform = world.regret(decided)
        tally.engine += engine
        tally.uniform += uniform
        if i in (1, 5, 10) or i == incidents:
            post = load_learning(ledger, incident.occurred_at, config).posteriors
            console.print(_progress(i, world, post, decided, tally))
    post = load_learning(ledger, stream[-1][0].occurred_at, config).posteriors
    found = top_perks(post).join(world.best, on="segment")
    right = int((found["top"] == found["best_perk"]).sum())
    console.print(
        f"After {incidents} incidents the engine's top perk is the true best for "
        f"[bold]{right} of {found.height}[/bold] segments; its cumulative regret is "
        f"[bold]{tally.engine:.1f}[/bold] lost redemptions against {tally.uniform:.1f} for "
        f"uniform random choice ({tally.engine / max(tally.uniform, 1e-9):.0%})."
    )
    return world, tally, post


def _progress(
    n: int, world: World, post: pl.DataFrame, decided: pl.DataFrame, tally: Tally
) -> Table:
    table = Table(
        title=f"after incident {n}: regret {tally.engine:.1f} (uniform {tally.uniform:.1f})",
        title_justify="left",
    )
    for col in ("segment", "true best", "engine's top", "estimate", "given the best now"):
        table.add_column(col)
    given = (
        decided.filter(pl.col("perk_id").is_not_null())
        .join(world.best, on="segment")
        .group_by("segment")
        .agg(share=(pl.col("perk_id") == pl.col("best_perk")).mean())
    )
    rows = world.best.join(top_perks(post), on="segment", how="left").join(
        given, on="segment", how="left"
    )
    for r in rows.sort("segment").iter_rows(named=True):  # one row per segment, display only
        mark = "[green]✓[/green]" if r["top"] == r["best_perk"] else "[yellow]…[/yellow]"
        table.add_row(
            r["segment"],
            f"{r['best_perk']} ({r['best_acceptance']:.0%})",
            f"{mark} {r['top'] or '-'}",
            "-" if r["top_acceptance"] is None else f"{r['top_acceptance']:.0%}",
            "-" if r["share"] is None else f"{r['share']:.0%}",
        )
    return table
