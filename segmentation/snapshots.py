"""Versioned profile snapshots: `<root>/profiles/snapshot-NNNN.parquet`, newest by number.

Every import or derive that is loaded becomes a new file; old ones are kept, so a bad import
is undone by loading an older version. Files appear atomically: written under a hidden
temporary name, then hard-linked to their final name, which fails instead of overwriting
when another process took that number first (then the next number is tried).
"""

from __future__ import annotations

import builtins
import os
import re
import uuid
from pathlib import Path

import msgspec
import polars as pl

__all__ = ["Erased", "Snapshots"]

_NAME = re.compile(r"snapshot-(\d+)\.parquet")


class Erased(msgspec.Struct, frozen=True, kw_only=True):
    """What erasing one customer removed from the profile files."""

    files: int
    rows: int
    first_names: frozenset[str]


class Snapshots:
    """The profile snapshots under a data folder."""

    def __init__(self, root: str | Path) -> None:
        self.folder = Path(root) / "profiles"

    def list(self) -> list[Path]:
        """Snapshot files, oldest first."""
        found = [
            (int(match.group(1)), path)
            for path in self.folder.glob("snapshot-*.parquet")
            if (match := _NAME.fullmatch(path.name))
        ]
        return [path for _, path in sorted(found)]

    def latest(self) -> Path | None:
        """The newest snapshot, or None when there is none."""
        paths = self.list()
        return paths[-1] if paths else None

    def path(self, version: int) -> Path:
        return self.folder / f"snapshot-{version:04d}.parquet"

    @staticmethod
    def version(path: Path) -> int:
        """The number in a snapshot file name."""
        match = _NAME.fullmatch(path.name)
        if match is None:
            raise ValueError(f"not a snapshot file name: {path.name}")
        return int(match.group(1))

    def load(self, version: int | None = None) -> pl.DataFrame:
        """One snapshot's profiles; the newest when `version` is None."""
        path = self.latest() if version is None else self.path(version)
        if path is None or not path.exists():
            which = "any snapshot" if version is None else f"snapshot {version}"
            raise LookupError(f"no profiles: {which} not found in {self.folder}")
        return pl.read_parquet(path)

    def save(self, frame: pl.DataFrame) -> Path:
        """Write `frame` as the next snapshot and return its path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".tmp-{uuid.uuid4().hex}.parquet"
        try:
            frame.rechunk().write_parquet(tmp, compression="zstd", statistics=True)
            while True:
                latest = self.latest()
                target = self.path(1 if latest is None else self.version(latest) + 1)
                try:
                    os.link(tmp, target)
                except FileExistsError:
                    continue
                return target
        finally:
            tmp.unlink(missing_ok=True)

    def profile_files(self) -> builtins.list[Path]:
        """Every Parquet file holding profile rows: snapshots and import rejects."""
        return sorted(p for p in self.folder.glob("*.parquet") if not p.name.startswith("."))

    def erase(self, customer_id: str) -> Erased:
        """Remove one customer's rows from every profile file, each rewritten atomically.

        Returns the first names the rows carried, so stored messages can be cleaned too.
        """
        files, rows, names = 0, 0, set[str]()
        for path in self.profile_files():
            frame = pl.read_parquet(path)
            if "customer_id" not in frame.columns:
                continue
            mine = (frame["customer_id"].cast(pl.String) == customer_id).fill_null(False)
            hits = int(mine.sum())
            if not hits:
                continue
            if "first_name" in frame.columns:
                names.update(n for n in frame.filter(mine)["first_name"].to_list() if n)
            tmp = path.with_name(f".tmp-{uuid.uuid4().hex}.parquet")
            try:
                frame.filter(~mine).write_parquet(tmp, compression="zstd", statistics=True)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            files, rows = files + 1, rows + hits
        return Erased(files=files, rows=rows, first_names=frozenset(names))
