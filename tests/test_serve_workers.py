"""`makegood serve --workers N` shares the cores among its workers' polars pools.

Each worker's pool would otherwise be as wide as the machine, and N such pools make every
request's small queries wait for threads the other workers hold. Against a real server
with two workers: each worker runs as many polars threads as its share of the cores (at
least one), and an operator's POLARS_MAX_THREADS is kept.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import polars as pl
import pytest

from segmentation.model import Segmentation
from tests.servers import start
from tests.test_serve_limits import prepared_folder


def workers_of(pid: int) -> list[int]:
    """The worker processes uvicorn spawned under `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"spawn_main" in cmdline:
            found.append(int(entry))
    return found


def polars_threads(pid: int) -> int:
    """How many threads of `pid` are polars' pool (named polars-0, polars-1, ...)."""
    names = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            names.append(Path(f"/proc/{pid}/task/{task}/comm").read_text().strip())
        except OSError:
            continue
    return sum(1 for n in names if n.startswith("polars-") and n[7:].isdigit())


def pools_once_up(pid: int, timeout: float = 120.0) -> list[int]:
    """Each worker's pool size, once both workers have started theirs."""
    deadline = time.monotonic() + timeout
    while True:
        sizes = [polars_threads(w) for w in workers_of(pid)]
        if len(sizes) == 2 and all(sizes):
            return sizes
        assert time.monotonic() < deadline, f"workers and their pools: {sizes}"
        time.sleep(0.2)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
@pytest.mark.parametrize("operator", [None, "3"])
def test_two_workers_share_the_cores(
    tmp_path: Path,
    population: pl.DataFrame,
    model: Segmentation,
    operator: str | None,
) -> None:
    data = tmp_path / "data"
    prepared_folder(data, population, model)
    env = {**os.environ, "MAKEGOOD_DATA": str(data)}
    env.pop("POLARS_MAX_THREADS", None)
    if operator is not None:
        env["POLARS_MAX_THREADS"] = operator
    server, _base = start(env, tmp_path / "server.log", workers=2)
    try:
        sizes = pools_once_up(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    cores = len(os.sched_getaffinity(0))
    share = int(operator) if operator is not None else max(1, cores // 2)
    assert sizes == [share, share]
