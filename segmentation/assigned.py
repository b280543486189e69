"""Segments of a profile snapshot, remembered per segmentation version.

A snapshot file is never changed in place (an import or an erasure writes a new file), and
a version's model never changes once saved, so the cluster of each profile is a fact of the
pair: worked out once, with the ids' hashes, and kept beside the model
(`models/<version>/assigned/`), keyed by the snapshot's name, size and modification time.
A process that starts on a snapshot it has seen (every `makegood` command after the first,
every server worker after the first) reads two columns instead of importing scikit-learn
and running every profile through the model; a rename changes no cluster, so the names
always come from the card.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import polars as pl

from segmentation.ids import id_hash
from segmentation.model import Later, Segmentation
from segmentation.registry import Registry

__all__ = ["deferred", "segmented"]

_KEPT = {"cluster": pl.Int32, "_id_hash": pl.UInt64}


def deferred(registry: Registry, version: str) -> Segmentation:
    """`version` with its card read and its model file checked (digest, allowed types) now,
    and loaded, with every check of `Registry.load`, only when a profile must go through it."""
    card = registry.card(version)
    registry.verify(version)
    return Segmentation(Later(lambda: registry.load(version).pipeline), card)


def segmented(snapshot: Path, registry: Registry, model: Segmentation) -> pl.DataFrame:
    """The snapshot's profiles with `segment`, `segment_description` (see
    `Segmentation.assign`) and `_id_hash`, from what was remembered when there is."""
    profiles = pl.read_parquet(snapshot)
    path = _path(snapshot, registry, model.card.version)
    kept = _read(path, profiles.height)
    if kept is None:
        kept = pl.DataFrame([model.clusters(profiles), id_hash(profiles["customer_id"])])
        _write(path, kept)
    return model.assign(profiles, kept["cluster"]).with_columns(kept["_id_hash"])


def _path(snapshot: Path, registry: Registry, version: str) -> Path:
    stat = snapshot.stat()
    name = f"{snapshot.stem}-{stat.st_size}-{stat.st_mtime_ns}.parquet"
    return registry.root / version / "assigned" / name


def _read(path: Path, rows: int) -> pl.DataFrame | None:
    """What was kept for exactly this snapshot, or None (none, or not what it should be)."""
    try:
        kept = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError):
        return None
    return kept if kept.height == rows and dict(kept.schema) == _KEPT else None


def _write(path: Path, kept: pl.DataFrame) -> None:
    """Kept whole or not at all (a temporary file renamed), replacing what was kept for
    earlier files of the same name; a folder that cannot be written is only not helped."""
    stem = path.name.rsplit("-", 2)[0]
    partial = path.with_name(f".{uuid.uuid4().hex}.partial")
    try:
        path.parent.mkdir(exist_ok=True)
        for old in path.parent.glob(f"{stem}-*.parquet"):
            old.unlink(missing_ok=True)
        kept.write_parquet(partial)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
