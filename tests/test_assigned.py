"""Segments of a snapshot are remembered per segmentation version: a process that starts on
a snapshot it has seen reads them instead of importing scikit-learn and running every
profile through the model, and gets exactly the book the model would give."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from api.runtime import open_runtime
from api.settings import Settings
from segmentation import assigned
from segmentation.book import ProfileBook
from segmentation.model import Segmentation
from segmentation.profiles import UNSEGMENTED
from segmentation.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path: Path, model: Segmentation, population: pl.DataFrame) -> Path:
    """A data folder: a snapshot in which every 7th customer objects to profiling, and
    seg-0001 active."""
    data = tmp_path / "data"
    (data / "profiles").mkdir(parents=True)
    objecting = pl.int_range(pl.len()) % 7 == 0
    profiles = population.drop("latent_kind").with_columns(objects_to_profiling=objecting)
    profiles.write_parquet(data / "profiles" / "snapshot-0001.parquet")
    registry = Registry(data / "models")
    registry.save(model)
    registry.promote(model.card.version)
    return data


def _kept(data: Path) -> list[Path]:
    return sorted((data / "models").glob("*/assigned/*.parquet"))


def _fresh_book(data: Path) -> pl.DataFrame:
    """What the model itself gives the newest snapshot, worked out now."""
    registry = Registry(data / "models")
    snapshot = sorted((data / "profiles").glob("snapshot-*.parquet"))[-1]
    model = registry.load(registry.active() or "")
    return ProfileBook(pl.read_parquet(snapshot), model).frame


def test_a_second_start_reads_the_remembered_segments_and_never_imports_sklearn(
    folder: Path,
) -> None:
    first = open_runtime(Settings(data_dir=folder))
    first.close()
    assert len(_kept(folder)) == 1
    assert first.book.frame.equals(_fresh_book(folder))
    assert (first.book.frame["segment"] == UNSEGMENTED).sum() == (first.book.frame.height + 6) // 7

    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from api.runtime import open_runtime\n"
        "from api.settings import Settings\n"
        f"rt = open_runtime(Settings(data_dir=Path({str(folder)!r})))\n"
        "rt.book.frame.write_parquet(sys.argv[1])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'skops')))\n"
    )
    out = folder.parent / "book.parquet"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MAKEGOOD_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", probe, str(out)], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
    assert pl.read_parquet(out).equals(_fresh_book(folder))


def test_renames_new_snapshots_and_damaged_files_give_what_the_model_gives(
    folder: Path, model: Segmentation
) -> None:
    registry = Registry(folder / "models")
    snapshot = folder / "profiles" / "snapshot-0001.parquet"
    assigned.segmented(snapshot, registry, assigned.deferred(registry, "seg-0001"))

    old = model.card.segments[0].name
    registry.rename("seg-0001", old, "renamed-segment")
    renamed = assigned.segmented(snapshot, registry, assigned.deferred(registry, "seg-0001"))
    assert "renamed-segment" in renamed["segment"].to_list()
    assert old not in renamed["segment"].to_list()
    assert renamed.equals(_fresh_book(folder))

    # an import writes a newer snapshot: its segments are worked out, not taken from the old
    newer = folder / "profiles" / "snapshot-0002.parquet"
    pl.read_parquet(snapshot).tail(1_000).reverse().write_parquet(newer)
    book = assigned.segmented(newer, registry, assigned.deferred(registry, "seg-0001"))
    assert book.equals(_fresh_book(folder))
    assert len(_kept(folder)) == 2

    # what was kept and no longer fits (cut short, or not Parquet) is worked out again
    for damage in (lambda p: p.write_bytes(p.read_bytes()[:100]), lambda p: p.write_text("x")):
        kept = next(p for p in _kept(folder) if p.name.startswith("snapshot-0002"))
        damage(kept)
        again = assigned.segmented(newer, registry, assigned.deferred(registry, "seg-0001"))
        assert again.equals(_fresh_book(folder))

    # the same name rewritten (an erasure): the file's size and time tell it apart
    erased = pl.read_parquet(newer).tail(-3)
    erased.write_parquet(newer)
    after = assigned.segmented(newer, registry, assigned.deferred(registry, "seg-0001"))
    assert after.height == erased.height and after.equals(_fresh_book(folder))
    assert len([p for p in _kept(folder) if p.name.startswith("snapshot-0002")]) == 1


def test_a_folder_that_cannot_be_written_still_gets_its_segments(
    folder: Path, model: Segmentation
) -> None:
    registry = Registry(folder / "models")
    (folder / "models" / "seg-0001" / "assigned").write_text("not a folder")
    snapshot = folder / "profiles" / "snapshot-0001.parquet"
    book = assigned.segmented(snapshot, registry, assigned.deferred(registry, "seg-0001"))
    assert book.equals(_fresh_book(folder))
    assert _kept(folder) == []
