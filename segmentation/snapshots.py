"""Versioned profile snapshots: `<root>/profiles/snapshot-NNNN.parquet`, newest by number.

The newest snapshot is the one served. Every import, derive or rollback that is loaded
becomes a new file and none is ever deleted, so history stays readable: a rollback writes
the previous population again as the newest snapshot and records which one it restored.
Files appear atomically: written under a hidden temporary name, then hard-linked to their
final name, which fails instead of overwriting when another process took that number first
(then the next number is tried).

An import either updates the served population (`upsert`: new ids added, known ids
updated, nobody removed) or replaces it (`replace`: the file is everyone); `merge` says what
changes, counted by customer id, before anything is written.
"""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec
import polars as pl

from segmentation.profiles import conform, unusable_ids

__all__ = [
    "MAX_REMOVED_SHARE",
    "MODES",
    "Change",
    "Erased",
    "Mode",
    "Snapshots",
    "Staged",
    "TooManyRemoved",
    "diff",
    "merge",
]

_NAME = re.compile(r"snapshot-(\d+)\.parquet")
_META = "makegood"  # Parquet key-value metadata: {"restores": N} on a rollback's snapshot

MAX_REMOVED_SHARE = 0.1
"""A replace removing more than this share of the served customers needs force."""

Mode = Literal["upsert", "replace"]
MODES: tuple[Mode, ...] = ("upsert", "replace")


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """What loading a population changes in the served one, counted by customer id."""

    mode: str
    """`upsert`, `replace` or `rollback`."""
    before: int
    after: int
    added: int
    updated: int
    """Customers already served whose rows the new population carries (changed or not)."""
    removed: int

    @property
    def removed_share(self) -> float:
        """Removed customers as a share of those served before (0 when there were none)."""
        return self.removed / self.before if self.before else 0.0


class TooManyRemoved(ValueError):
    """A replace that would remove more than the allowed share of the served customers."""

    def __init__(self, change: Change, limit: float) -> None:
        self.change, self.limit = change, limit
        super().__init__(
            f"replace would remove {change.removed:,} of {change.before:,} profiles "
            f"({change.removed_share:.1%}), more than the {limit:.0%} allowed without force"
        )


def merge(
    current: pl.DataFrame | None,
    incoming: pl.DataFrame,
    mode: Mode,
    supplied: builtins.list[str] | None = None,
) -> tuple[pl.DataFrame, Change]:
    """The population after loading `incoming` over `current`, and what changes.

    `upsert` keeps everyone `incoming` does not name; a customer it names gets its values
    for the columns the file `supplied` (all of them when None) and keeps the others.
    `replace` makes `incoming` the whole population. Joins on customer_id, no row loops.
    """
    if current is None or mode == "replace":
        return incoming, diff(current, incoming, mode)
    kept = current.join(incoming.select("customer_id"), on="customer_id", how="anti")
    columns = incoming.columns if supplied is None else ["customer_id", *supplied]
    carried = [c for c in current.columns if c not in columns]
    if carried:  # the file did not say: known customers keep what they had
        incoming = incoming.drop(carried, strict=False).join(
            current.select("customer_id", *carried),
            on="customer_id",
            how="left",
            maintain_order="left",
        )
    merged = conform(_concat(kept, incoming))
    updated = current.height - kept.height
    change = Change(
        mode=mode,
        before=current.height,
        after=merged.height,
        added=incoming.height - updated,
        updated=updated,
        removed=0,
    )
    return merged, change


def _concat(kept: pl.DataFrame, incoming: pl.DataFrame) -> pl.DataFrame:
    """Rows of both; a column typed differently in each takes a type both fit, if any."""
    try:
        return pl.concat([kept, incoming], how="diagonal_relaxed")
    except pl.exceptions.PolarsError as exc:
        clash = [
            c
            for c in kept.columns
            if c in incoming.columns and kept.schema[c] != incoming.schema[c]
        ]
        raise ValueError(
            f"column {', '.join(clash) or '?'}: the file's values do not fit the served "
            f"profiles' ({exc})"
        ) from exc


def diff(current: pl.DataFrame | None, new: pl.DataFrame, mode: str) -> Change:
    """What serving `new` instead of `current` changes, counted by customer id."""
    if current is None:
        return Change(mode=mode, before=0, after=new.height, added=new.height, updated=0, removed=0)
    updated = new.join(current.select("customer_id"), on="customer_id", how="semi").height
    gone = current.join(new.select("customer_id"), on="customer_id", how="anti").height
    return Change(
        mode=mode,
        before=current.height,
        after=new.height,
        added=new.height - updated,
        updated=updated,
        removed=gone,
    )


@dataclass(frozen=True)
class Staged:
    """A population ready to become the served snapshot, and what that changes."""

    profiles: pl.DataFrame
    change: Change
    restores: int | None = None
    """The version a rollback copies; None for an import."""


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

    def served(self) -> pl.DataFrame | None:
        """The profiles served now (the newest snapshot), or None when there are none."""
        latest = self.latest()
        return None if latest is None else pl.read_parquet(latest)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder's lock so that read, merge and save are one step.

        Two imports at once would otherwise both merge into the same snapshot and the
        second would drop the first one's customers. One file descriptor per holder, so
        threads of one process exclude each other too.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = (self.folder / ".lock").open("a")
        except OSError:  # a read-only folder: nothing can be written, so nothing to exclude
            yield  # (the write itself, if any, reports the folder)
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def restores(self, version: int) -> int | None:
        """The snapshot a rollback's snapshot is a copy of; None for any other."""
        meta = pl.read_parquet_metadata(self.path(version)).get(_META)
        restored = json.loads(meta).get("restores") if meta else None
        return restored if isinstance(restored, int) else None

    def rollback_target(self) -> int:
        """The version a rollback serves again: the one served before the newest was made.

        A rollback's own snapshot counts as the one it restored, so rolling back again goes
        one further into the past instead of undoing the rollback.
        """
        versions = [self.version(p) for p in self.list()]
        if not versions:
            raise LookupError(f"no profiles: no snapshot in {self.folder}")
        origin = self.restores(versions[-1]) or versions[-1]
        earlier = [v for v in versions if v < origin]
        if not earlier:
            raise LookupError(
                f"nothing to roll back to: snapshot {origin} is the oldest in {self.folder}"
            )
        return self.restores(earlier[-1]) or earlier[-1]

    def stage_import(
        self,
        incoming: pl.DataFrame,
        mode: Mode,
        *,
        supplied: builtins.list[str] | None = None,
        max_removed_share: float = MAX_REMOVED_SHARE,
        force: bool = False,
    ) -> Staged:
        """`incoming` merged over the served profiles (see `merge`); nothing is written.

        Raises TooManyRemoved when a replace would remove more than `max_removed_share`
        of the served customers and `force` is not set, ValueError for ids no interface
        could carry (imports report those by row already; derived profiles meet them here).
        """
        unusable = unusable_ids(incoming)
        if unusable is not None:
            raise ValueError(unusable)
        profiles, change = merge(self.served(), incoming, mode, supplied)
        if mode == "replace" and not force and change.removed_share > max_removed_share:
            raise TooManyRemoved(change, max_removed_share)
        return Staged(profiles=profiles, change=change)

    def stage_rollback(self) -> Staged:
        """The population served before the newest snapshot, to serve again; nothing written."""
        target = self.rollback_target()
        restored = self.load(target)
        return Staged(
            profiles=restored, change=diff(self.served(), restored, "rollback"), restores=target
        )

    def commit(self, staged: Staged) -> Path:
        """Write a staged population as the newest snapshot, the one served from now on."""
        return self.save(staged.profiles, restores=staged.restores)

    def save(self, frame: pl.DataFrame, restores: int | None = None) -> Path:
        """Write `frame` as the next snapshot and return its path.

        `restores` records that it is a rollback's copy of that version.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".tmp-{uuid.uuid4().hex}.parquet"
        meta = None if restores is None else {_META: json.dumps({"restores": restores})}
        try:
            frame.rechunk().write_parquet(tmp, compression="zstd", statistics=True, metadata=meta)
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
        Holds the folder's lock: an import merging at the same time cannot bring them back.
        """
        with self.lock():
            return self._erase(customer_id)

    def _erase(self, customer_id: str) -> Erased:
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
            meta = pl.read_parquet_metadata(path).get(_META)
            try:
                frame.filter(~mine).write_parquet(
                    tmp,
                    compression="zstd",
                    statistics=True,
                    metadata=None if meta is None else {_META: meta},
                )
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            files, rows = files + 1, rows + hits
        return Erased(files=files, rows=rows, first_names=frozenset(names))
