"""What the data folder serves, for commands that check tables against it: the active
segmentation, its segments' typical customers (traits), and the checks a server would run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import polars as pl

from api.settings import Settings
from offers.catalog import Checks

if TYPE_CHECKING:
    from segmentation.model import Segmentation
    from segmentation.traits import SegmentTraits

__all__ = ["Served", "folder_checks", "folder_traits", "snapshots"]

Served = tuple["Segmentation", pl.DataFrame, "SegmentTraits"]
"""(model, its segmented profiles, their traits)"""


def snapshots(settings: Settings) -> list[str]:
    """Profile snapshot paths, oldest first."""
    return [str(p) for p in sorted((settings.data_dir / "profiles").glob("snapshot-*.parquet"))]


def _active(settings: Settings) -> Segmentation | None:
    from segmentation import assigned
    from segmentation.registry import Registry

    root = settings.data_dir / "models"
    active = Registry(root).active() if root.exists() else None
    return assigned.deferred(Registry(root), active) if active is not None else None


def folder_traits(settings: Settings, model: Segmentation | None = None) -> Served | None:
    """(model, segmented newest profiles, traits) for `model` (default: the active one);
    None when the folder has no segmentation or no profiles yet."""
    from pathlib import Path

    from segmentation import assigned
    from segmentation.registry import Registry
    from segmentation.traits import segment_traits

    model = model or _active(settings)
    paths = snapshots(settings)
    if model is None or not paths:
        return None
    registry = Registry(settings.data_dir / "models")
    segmented = assigned.segmented(Path(paths[-1]), registry, model)
    return model, segmented, segment_traits(segmented)


def folder_checks(settings: Settings, max_step: int | None = None) -> Checks:
    """The checks a server on this folder runs: segment names, traits, profile columns."""
    from api.runtime import table_checks

    served = folder_traits(settings)
    if served is None:
        return Checks() if max_step is None else Checks(max_step=max_step)
    checks = table_checks(*served)
    return checks if max_step is None else msgspec.structs.replace(checks, max_step=max_step)
