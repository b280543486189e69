"""`makegood segments …`: segmentation versions for analysts."""

from __future__ import annotations

import click


@click.group("segments")
def group() -> None:
    """Segmentations: train, list, show, rename, promote, roll back, drift, report."""
