"""`makegood profiles …`: customer profiles."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

console = Console()


@click.group("profiles")
def group() -> None:
    """Customer profiles: synthesize, import, derive, show."""


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
