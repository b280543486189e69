"""How often the simulation's 95% intervals hold the truth, over many seeded learning runs.

    python bench/ope_coverage.py              # 20 seeds
    python bench/ope_coverage.py --seeds 40

Each seed is one run of tests/test_learning_http.py's loop on a fresh SQLite ledger, over
HTTP (litestar's TestClient): a marketer's table with alternatives is published, 20
delayed flights of 300 of 3,000 synthetic customers are decided by the seeded server, and
the world's feedback is posted after each. Then two drafts are simulated, each changing one
segment: road warriors get only a lounge pass (marketing's first choice, which the engine
mostly left), families only a duty-free voucher (an alternative the engine only explored).
For each, the truth is known (the world's acceptance of that perk, for the decisions that
could get a perk). Printed per seed: regret against uniform choice, the share of segments
whose hidden best perk was the most given in the last 5 incidents, and whether each
estimator's interval covered; then the coverage over all seeds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import polars as pl
from litestar.testing import TestClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.app import create_app  # noqa: E402
from api.keys import KeyStore  # noqa: E402
from api.runtime import Runtime, learning_source  # noqa: E402
from api.settings import Settings  # noqa: E402
from offers.catalog import DEFAULTS  # noqa: E402
from offers.learning.world import marketer_world  # noqa: E402
from offers.ledger import Ledger, create_engine, publish_table, upgrade  # noqa: E402
from offers.messages import load_default_book  # noqa: E402
from segmentation.book import ProfileBook  # noqa: E402
from segmentation.model import train  # noqa: E402
from segmentation.synth import synth_profiles  # noqa: E402
from tests.learning_http import covers, most_given, play, publish, simulated_segment  # noqa: E402

CASES = (
    ("biz", "lounge-30m", "road-warrior"),
    ("family", "dutyfree-12", "leisure-family"),
)


def run(seed: int, book: ProfileBook, folder: Path) -> dict[str, object]:
    engine = create_engine(f"sqlite:///{folder / 'makegood.db'}")
    upgrade(engine)
    ledger = Ledger(engine)
    body = (DEFAULTS / "offers.toml").read_text(encoding="utf-8")
    publish_table(ledger, "flight-delay", body, "bench", "default", datetime.now(UTC))
    settings = Settings(data_dir=folder, seed=seed)
    runtime = Runtime(
        settings=settings,
        engine=engine,
        ledger=ledger,
        model=book.model,
        book=book,
        messages=load_default_book(),
        learning=learning_source(settings, ledger),
    )
    runtime.reload_table()
    _info, key = KeyStore(engine).create("bench", "admin", datetime.now(UTC))
    world = marketer_world(book.frame["segment"].unique().to_list(), seed)
    out: dict[str, object] = {"seed": seed}
    try:
        with TestClient(app=create_app(runtime)) as client:
            client.headers.update({"Authorization": f"Bearer {key}"})
            publish(client, world)
            played = play(client, world, book.frame["customer_id"], incidents=20, pax=300)
            last = [f"SIM{seed}-{i:03d}" for i in range(15, 20)]
            found = world.best.join(most_given(played.decisions, last), on="segment", how="left")
            out["regret"] = played.regret / played.uniform
            out["best_most_given"] = float((found["given"] == found["best_perk"]).mean())  # type: ignore[arg-type]
            for rule, perk, segment in CASES:
                group, truth = simulated_segment(
                    client, world, played.decisions, rule, perk, segment
                )
                for name, ok in covers(group, truth).items():
                    out[f"{segment}:{name}"] = ok
                out[f"{segment}:effective"] = group["effective_size"]
    finally:
        engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    population = synth_profiles(3_000, 7).drop("latent_kind")
    book = ProfileBook(population, train(population, version="seg-0001", k=5, seed=7))
    rows = []
    for seed in range(1, args.seeds + 1):
        with tempfile.TemporaryDirectory(prefix="makegood-ope-") as tmp:
            row = run(seed, book, Path(tmp))
        rows.append(row)
        print(msgspec.json.encode(row).decode(), flush=True)
    frame = pl.DataFrame(rows)
    print(
        f"\n{args.seeds} seeds, {time.perf_counter() - started:.0f} s; regret / uniform: "
        f"median {frame['regret'].median():.2f}, worst {frame['regret'].max():.2f}; "
        f"hidden best most given in the last 5 incidents: median "
        f"{frame['best_most_given'].median():.0%}, worst {frame['best_most_given'].min():.0%}"
    )
    for _rule, _perk, segment in CASES:
        cells = ", ".join(
            f"{name} {int(frame[f'{segment}:{name}'].sum())}/{frame.height}"
            for name in ("ips", "snips", "dr")
        )
        effective = frame[f"{segment}:effective"].median()
        print(f"coverage, {segment} changed: {cells} (median effective size {effective:.0f})")


if __name__ == "__main__":
    main()
