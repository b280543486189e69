"""Coverage at the command line: which segments each offer table's own rules reach.

`offers validate` prints it for the table checked; `segments promote`, `rollback` and
`train --promote` print it for every live table under the new active segmentation and warn
when a table reaches fewer customers than before.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from api.cli.folder import Served, folder_traits
from api.settings import Settings
from offers.catalog import Coverage

__all__ = ["print_coverage", "report_coverage"]

console = Console()


def print_coverage(cov: Coverage) -> None:
    """Which segments the table's own rules reach, with sizes and personas."""
    grid = Table(title=f"coverage of {cov.table}: {cov.share:.0%} of customers")
    for column in ("segment", "customers", "persona", "rules chosen for it"):
        grid.add_column(column, justify="right" if column == "customers" else "left")
    for row in cov.segments:
        rules = ", ".join(row.rules) if row.covered else "[yellow]only catch-all rules[/]"
        grid.add_row(row.segment, f"{row.size:,}", row.persona or "-", rules)
    console.print(grid)


def report_coverage(settings: Settings, before: Served | None) -> None:
    """Coverage of every live offer table under the now active segmentation, and a warning
    for each table that reaches fewer customers with rules chosen for them than before."""
    from offers.ledger import Ledger, create_engine, upgrade
    from offers.live import coverage_warnings, live_coverage

    no_ledger = settings.database_url is None and not (settings.data_dir / "makegood.db").exists()
    after = folder_traits(settings)
    if after is None:
        return
    if no_ledger:  # nothing is live yet: what the shipped tables would reach at first start
        from offers.catalog import DEFAULTS, coverage, decode_table

        console.print("no offer table is live yet; the shipped ones would reach:")
        for path in sorted(DEFAULTS.glob("*.toml")):
            table = decode_table(path.read_text("utf-8"), path.name)
            console.print(f"  {coverage(table, after[2]).summary()}", highlight=False)
        return
    engine = create_engine(settings.db_url)
    try:
        upgrade(engine)
        ledger = Ledger(engine)
        for cov in live_coverage(ledger, after[2]):
            print_coverage(cov)
        old = before[2] if before is not None else None
        for warning in coverage_warnings(ledger, old, after[2]):
            console.print(f"[yellow]warning: {warning}[/yellow]")
    finally:
        engine.dispose()
