"""A data folder that cannot be written is said so plainly, naming it, never as a traceback.

`makegood serve` checks before any worker starts; a folder that turns read-only or fills up
later makes each write fail whole (SQLite rolls the transaction back), and callers are told
why: one `Error:` line on the command line, a 503 over HTTP.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import tempfile

from sqlalchemy.exc import DBAPIError

from api.settings import Settings

__all__ = ["DataFolderError", "check_writable", "write_failure"]

#: errno values that mean "this file system will not take the write", not a bug.
WRITE_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
)
#: SQLite's words for the same, as its driver reports them.
_SQLITE_WRITE = ("readonly", "read-only", "disk is full", "disk i/o error", "unable to open")


class DataFolderError(RuntimeError):
    """The data folder cannot be written."""


def check_writable(settings: Settings) -> None:
    """Refuse a data folder this process cannot write: a file in each folder, the database.

    Raises DataFolderError naming the folder, so a server never starts only to refuse
    every incident.
    """
    folder = settings.data_dir
    what = folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for what in (folder, folder / "profiles", folder / "models"):
            if what.is_dir():
                fd, probe = tempfile.mkstemp(dir=what, prefix=".write-check-")
                os.close(fd)
                os.unlink(probe)
        if settings.database_url is None:
            for name in ("makegood.db", "makegood.db-wal", "makegood.db-shm"):
                what = folder / name
                if what.exists():
                    what.open("r+b").close()
    except OSError as exc:
        where = "" if what == folder else f" ({what.relative_to(folder)})"
        raise DataFolderError(
            f"data folder {folder} is not writable{where}: {exc.strerror or exc}"
        ) from exc


def write_failure(exc: BaseException) -> str | None:
    """Why a write was refused by the file system or SQLite, or None for any other error."""
    if isinstance(exc, DBAPIError):
        exc = exc.orig if isinstance(exc.orig, BaseException) else exc
    if isinstance(exc, sqlite3.Error):
        text = str(exc)
        return text if any(word in text.lower() for word in _SQLITE_WRITE) else None
    if not isinstance(exc, OSError):
        return None
    code = exc.errno
    if code is None:  # polars raises OSError subclasses naming the code only in the text
        found = re.search(r"os error (\d+)", str(exc))
        code = int(found.group(1)) if found else None
    return os.strerror(code) if code in WRITE_ERRNOS else None
