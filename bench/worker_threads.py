"""What a worker's polars pool costs a small incident: one thread against every core.

    python bench/worker_threads.py              # 300 passengers, 60 creates, 3 rounds
    python bench/worker_threads.py --passengers 50 --creates 100

`makegood serve --workers N` gives each worker cores / N polars threads. This measures
why: in a fresh process per setting (polars reads POLARS_MAX_THREADS once, at import),
the same creates of `--passengers` customers through the served create path, in process,
with `POLARS_MAX_THREADS=1` and with every core, alternated. It prints the wall time and
the CPU time (all of the process's threads) per create, and their ratios: on a busy
server, CPU spent by idle pool threads waking up and spinning is CPU the other requests
and workers do not get.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(folder: Path, passengers: int, creates: int) -> dict[str, float]:
    """Wall and CPU seconds per create, after three warming creates."""
    import msgspec

    from api.http.incidents import _create
    from api.http.wire import IncidentCreate
    from api.runtime import open_runtime
    from api.settings import Settings

    runtime = open_runtime(Settings(data_dir=folder))
    rng = random.Random(7)
    wall = cpu = 0.0
    for i in range(creates + 3):
        ids = sorted({f"c{rng.randrange(1, 10_001):06d}" for _ in range(passengers)})
        body = {
            "incident_id": f"THREADS-{uuid.uuid4().hex[:10]}",
            "kind": "flight_delay",
            "occurred_at": "2026-11-25T07:05:00Z",
            "facts": {"delay_minutes": 50, "flight": "MG123", "origin": "TPE"},
            "customers": ids,
        }
        data = msgspec.convert(body, IncidentCreate)
        started, used = time.perf_counter(), time.process_time()
        msgspec.json.encode(_create(runtime, data)[1])
        if i >= 3:
            wall += time.perf_counter() - started
            cpu += time.process_time() - used
    return {"wall": wall / creates, "cpu": cpu / creates}


def measure(folder: Path, threads: int, passengers: int, creates: int) -> dict[str, float]:
    env = {**os.environ, "POLARS_MAX_THREADS": str(threads), "MAKEGOOD_DATA": str(folder)}
    args = ["--child", str(folder), "--passengers", str(passengers), "--creates", str(creates)]
    out = subprocess.run(
        [sys.executable, __file__, *args], env=env, check=True, capture_output=True, text=True
    )
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passengers", type=int, default=300)
    parser.add_argument("--creates", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.passengers, args.creates)))
        return
    from api.runtime import ensure_bootstrapped
    from api.settings import Settings

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    folder = Path(tempfile.mkdtemp(prefix="makegood-threads-"))
    try:
        ensure_bootstrapped(Settings(data_dir=folder))
        print(
            f"{args.passengers}-passenger creates in process, {args.creates} per run "
            f"(load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}):"
        )
        ratios: list[tuple[float, float]] = []
        for round_ in range(1, args.rounds + 1):
            one = measure(folder, 1, args.passengers, args.creates)
            every = measure(folder, cores, args.passengers, args.creates)
            ratios.append((every["wall"] / one["wall"], every["cpu"] / one["cpu"]))
            print(
                f"  round {round_}: 1 thread {one['wall'] * 1000:6.1f} ms wall, "
                f"{one['cpu'] * 1000:6.1f} ms CPU; {cores} threads "
                f"{every['wall'] * 1000:6.1f} ms wall, {every['cpu'] * 1000:6.1f} ms CPU"
                f" -> {ratios[-1][0]:.2f}x the wall, {ratios[-1][1]:.2f}x the CPU"
            )
        wall = statistics.median(r[0] for r in ratios)
        cpu = statistics.median(r[1] for r in ratios)
        print(f"  median: {cores} threads take {wall:.2f}x the wall and {cpu:.2f}x the CPU of 1")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
