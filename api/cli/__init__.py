"""The `makegood` command: one module per command group, registered in `main`."""

from api.cli.main import cli, main

__all__ = ["cli", "main"]
