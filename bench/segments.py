"""Segmentation speed, each figure next to its naive alternative measured in the same run.

    .venv/bin/python bench/segments.py            # everything (about 3-5 minutes on 2 cores)
    .venv/bin/python bench/segments.py --no-big   # skip the 10,000,000-row file

1. Assign segments to 1,000,000 profiles (polars frame in, frame with a segment column
   out) against (a) the floor, `KMeans.predict` on the bare float32 matrix, and (b) the
   naive path: convert to pandas, compute features there, `pipeline.predict`, map names,
   convert back. Targets: at most 3x the floor, at least 5x faster than pandas.
2. Train on 1,000,000 profiles x 12 features, k searched over 3..8 (target < 30 s).
3. Train on a 10,000,000-row Parquet file written in chunks by `segmentation.synth`, in a
   fresh process so its peak RSS is the training's own (target < 60 s, < 4 GiB).

The naive path needs pandas and pyarrow, which makegood does not depend on:
`.venv/bin/pip install pandas pyarrow` (bench only).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from segmentation.features import feature_matrix
from segmentation.model import Segmentation, train
from segmentation.profiles import LANGUAGES, TIERS
from segmentation.spec import DEFAULT_SPEC, Feature, FeatureSpec
from segmentation.synth import synth_profiles, write_profiles

SPEC_12 = FeatureSpec(
    features=[
        *DEFAULT_SPEC.features,
        Feature(column="complaints_12m", transform="log1p"),
        Feature(column="tier", transform="ordinal", order=list(TIERS)),
        Feature(column="language", transform="onehot", categories=list(LANGUAGES), weight=0.5),
    ]
)
"""The default seven features plus complaints, tier and language (one-hot): 12 columns."""


def _median_times(runs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each callable, run interleaved so machine noise hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _pandas_assign(profiles: pl.DataFrame, model: Segmentation) -> pl.DataFrame:
    """What one writes without thinking: pandas features, pipeline.predict, map, back."""
    import pandas as pd

    frame = profiles.to_pandas()
    columns: dict[str, Any] = {}
    for f in model.card.spec.features:
        values = frame[f.column]
        if f.transform == "log1p":
            columns[f.name] = np.log1p(values.astype(float).clip(lower=0).fillna(0))
        elif f.transform == "ordinal":
            order = {v: i for i, v in enumerate(f.order or [])}
            columns[f.name] = values.astype(str).map(order).fillna(0).astype(float)
        elif f.transform == "onehot":
            for category, name in zip(f.categories or [], f.outputs(), strict=True):
                columns[name] = (values.astype(str) == category).astype(float)
        else:
            columns[f.name] = values.astype(float).fillna(0)
    features = pd.DataFrame(columns)
    labels = model.pipeline.predict(features.to_numpy(dtype=np.float32))
    names = {s.cluster: s.name for s in model.card.segments}
    descriptions = {s.cluster: s.description for s in model.card.segments}
    frame["segment"] = pd.Series(labels).map(names)
    frame["segment_description"] = pd.Series(labels).map(descriptions)
    return pl.from_pandas(frame)


def bench_assign(profiles: pl.DataFrame, model: Segmentation, repeat: int) -> dict[str, Any]:
    kmeans = model.pipeline.steps[-1][1]
    bare = np.ascontiguousarray(
        model.pipeline[:-1].transform(feature_matrix(profiles, model.card.spec)), np.float32
    )
    assert np.array_equal(model.predict_frame(profiles), kmeans.predict(bare))
    runs: dict[str, Callable[[], object]] = {
        "makegood assign": lambda: model.assign(profiles),
        "floor: KMeans.predict(float32)": lambda: kmeans.predict(bare),
    }
    try:
        import pandas  # noqa: F401

        naive = _pandas_assign(profiles, model)
        assert naive["segment"].equals(model.assign(profiles)["segment"])
        runs["naive: pandas + pipeline.predict"] = lambda: _pandas_assign(profiles, model)
    except ImportError:
        print("pandas/pyarrow not installed: skipping the naive path (see the docstring)")
    return _median_times(runs, repeat)


def _generate(path: Path, rows: int, chunk: int) -> float:
    """Write `rows` synthetic profiles to one Parquet file, `chunk` rows at a time."""
    start = time.perf_counter()
    parts = path.parent / "parts"
    parts.mkdir()
    for i, offset in enumerate(range(0, rows, chunk)):
        frame = synth_profiles(min(chunk, rows - offset), seed=1000 + i).drop("latent_kind")
        frame = frame.with_columns(customer_id=pl.format("p{}-{}", pl.lit(i), "customer_id"))
        write_profiles(frame, parts / f"part-{i:04d}.parquet")
        del frame
    pl.scan_parquet(parts / "*.parquet").sink_parquet(path, compression="zstd")
    for part in parts.iterdir():
        part.unlink()
    parts.rmdir()
    return time.perf_counter() - start


def _train_file(path: Path) -> None:
    """Child process: train on a file, print seconds, peak RSS and the card's basics."""
    start = time.perf_counter()
    model = train(path, version="bench", seed=7, spec=SPEC_12)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    card = model.card
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_bytes": peak,
                "k": card.k,
                "rows": card.rows,
                "sample_rows": card.sample_rows,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-big", action="store_true")
    parser.add_argument("--train-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_file:
        _train_file(args.train_file)
        return

    print(f"synthesizing {args.rows:,} profiles…", flush=True)
    profiles = synth_profiles(args.rows, seed=1).drop("latent_kind")

    start = time.perf_counter()
    model = train(profiles, version="bench", seed=7, spec=SPEC_12)
    trained = time.perf_counter() - start
    outputs = len(SPEC_12.outputs())
    print(
        f"\ntrain {args.rows:,} x {outputs} features, k searched 3..8 -> k={model.card.k}: "
        f"{trained:.1f} s (target < 30 s)"
    )

    print(f"\nassign {args.rows:,} profiles (median of {args.repeat}, interleaved):")
    times = bench_assign(profiles, model, args.repeat)
    ours = times["makegood assign"]
    floor = times["floor: KMeans.predict(float32)"]
    for name, seconds in times.items():
        print(f"  {name:36} {seconds * 1000:8.1f} ms")
    print(f"  makegood / floor                     {ours / floor:8.2f} x   (target <= 3)")
    naive = times.get("naive: pandas + pipeline.predict")
    if naive is not None:
        print(f"  naive / makegood                     {naive / ours:8.2f} x   (target >= 5)")

    if args.no_big:
        return
    with tempfile.TemporaryDirectory(prefix="makegood-bench-") as tmp:
        path = Path(tmp) / "profiles.parquet"
        print(f"\nwriting {args.big_rows:,} profiles in 1,000,000-row chunks…", flush=True)
        generated = _generate(path, args.big_rows, 1_000_000)
        size = path.stat().st_size / 2**20
        print(f"  {generated:.1f} s, {size:,.0f} MiB")
        child = subprocess.run(
            [sys.executable, __file__, "--train-file", str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"train {result['rows']:,}-row Parquet file (fit on a {result['sample_rows']:,}-row "
            f"streamed sample, every row assigned in batches), k={result['k']}: "
            f"{result['seconds']:.1f} s (target < 60 s), "
            f"peak RSS {result['peak_bytes'] / 2**30:.2f} GiB (target < 4 GiB)"
        )


if __name__ == "__main__":
    main()
