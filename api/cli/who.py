"""Who runs a command: the name a history records for a change made from the shell."""

from __future__ import annotations

import getpass

__all__ = ["current_user"]


def current_user() -> str:
    """The operating system's user name, or `cli` where there is none."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"
