"""`makegood offers …`: offer tables for marketing."""

from __future__ import annotations

import click


@click.group("offers")
def group() -> None:
    """Offer tables: validate, diff, publish, roll back, import, export."""
