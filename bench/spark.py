"""Benchmark: the Spark engine beside the local one, in the same run, on the same data.

1. derive: profiles from both Online Retail files stacked (1,044,847 lines), polars'
   streaming engine vs Spark SQL on `--master` (default local[2]); answers compared.
2. train + assign: synthetic profiles (default 1,000,000), `segmentation.model.train` vs
   `train_on_spark` (Spark sample, the same scikit-learn fit, every row assigned with
   mapInArrow); labels compared.
3. incident: one flight-delay step for every customer (default 1,000,000) with a budget,
   recorded in an SQLite ledger (the driver writes it), or with `--postgres URL` in two
   fresh schemas of that database (Spark's executors write it): `apply_update` vs
   `apply_on_spark`; decisions compared.
4. scaling: assigning 1, 2 and 4 copies of the profiles on local[1] and local[2] (a new
   SparkSession each), to show what a second executor core buys.

    .venv/bin/pip install '.[spark]'
    .venv/bin/python -m bench.spark [--rows 1000000] [--no-scaling] [--master local[2]]
                                    [--only derive|segments|incident|scaling] [--repeat 2]
                                    [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from bench.derive import COLUMNS, DATA, stacked

T = TypeVar("T")
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def line(label: str, local: float, spark: float, note: str = "") -> None:
    print(
        f"  {label:<34} local {local:8.2f} s   spark {spark:8.2f} s   "
        f"spark/local {spark / local:5.2f}x  {note}"
    )


def bench_derive(spark: Any, work: Path) -> None:
    from polars.testing import assert_frame_equal

    from segmentation.derive import derive
    from segmentation.spark_derive import derive_on_spark

    lines = work / "lines.parquet"
    stacked(DATA).sink_parquet(lines)
    local_s, local = timed(lambda: derive(lines, **COLUMNS))
    spark_s, remote = timed(lambda: derive_on_spark(spark, [lines], workdir=work, **COLUMNS))
    assert_frame_equal(remote.profiles, local.profiles)
    rows = local.report.rows
    line(f"derive {rows:,} lines", local_s, spark_s, "profiles equal")


def bench_segments(spark: Any, profiles: Path, rows: int) -> Any:
    from segmentation.model import train
    from segmentation.spark_segments import assign_on_spark, read_profiles, train_on_spark

    args: dict[str, Any] = {"version": "seg-0001", "k": 6, "seed": 7, "sample_rows": 200_000}
    local_s, local = timed(lambda: train(profiles, **args))
    spark_s, remote = timed(lambda: train_on_spark(spark, [profiles], **args))
    line(f"train + assign {rows:,} (k=6)", local_s, spark_s, "sizes by the executors")
    frame = pl.read_parquet(profiles)
    local_s, want = timed(lambda: remote.assign(frame).select("customer_id", "segment"))
    spark_s, got = timed(
        lambda: pl.from_arrow(
            assign_on_spark(spark, read_profiles(spark, [profiles]), remote)
            .select("customer_id", "segment")
            .toArrow()
        )
    )
    assert isinstance(got, pl.DataFrame)
    same = got.sort("customer_id").equals(want.sort("customer_id"))
    assert same
    line(f"assign {rows:,} (to the driver)", local_s, spark_s, "labels equal")
    del local
    return remote


_SCHEMAS: list[tuple[str, str]] = []  # made by `_ledger_url`, dropped at the end


def _drop_schemas() -> None:
    import sqlalchemy as sa

    from offers.ledger.db import create_engine

    for url, schema in _SCHEMAS:
        admin = create_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _ledger_url(folder: Path, postgres: str | None) -> str:
    """An SQLite file in `folder`, or a new schema of the `postgres` database."""
    if postgres is None:
        return f"sqlite:///{folder / 'makegood.db'}"
    import sqlalchemy as sa

    from offers.ledger.db import create_engine

    schema = f"bench_{folder.name}_{int(time.time())}"
    admin = create_engine(postgres)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    _SCHEMAS.append((postgres, schema))
    return f"{postgres}?options=-csearch_path%3D{schema}"


def bench_incident(
    spark: Any, profiles: Path, rows: int, work: Path, postgres: str | None = None
) -> None:
    from dataclasses import replace

    from api.runtime import Runtime
    from api.settings import Settings
    from offers.catalog.tables import DEFAULTS
    from offers.decide import ContactPolicy
    from offers.flow import apply_update
    from offers.incidents.kinds import FlightFacts, Incident
    from offers.ledger.db import create_engine, upgrade
    from offers.ledger.store import Ledger
    from offers.ledger.versions import publish_table
    from offers.messages.book import load_default_book
    from offers.spark_flow import apply_on_spark, read_profiles
    from segmentation.book import ProfileBook
    from segmentation.model import train
    from segmentation.spark_segments import traits_on_spark
    from segmentation.synth import synth_profiles

    model = train(synth_profiles(3_000, 7).drop("latent_kind"), version="seg-0001", k=5)
    frame = pl.read_parquet(profiles)
    incident = Incident(
        incident_id="MG1-2026-11-23",
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 23, 5, 0, tzinfo=UTC),
        facts=FlightFacts(delay_minutes=60, flight="MG1", origin="TPE"),
    )

    def parts(folder: Path, book: ProfileBook, traits: Any = None) -> Any:
        folder.mkdir()
        engine = create_engine(_ledger_url(folder, postgres))
        upgrade(engine)
        ledger = Ledger(engine)
        body = (DEFAULTS / "offers.toml").read_text(encoding="utf-8")
        publish_table(ledger, "flight-delay", body, "bench", "default", NOW)
        rt = Runtime(
            settings=Settings(data_dir=folder),
            engine=engine,
            ledger=ledger,
            model=model,
            book=book,
            messages=load_default_book(),
        )
        if traits is not None:  # personas resolve against the dataset Spark segments
            rt.use_traits(traits)
        rt.reload_table()
        return replace(rt.parts(), contact=ContactPolicy(holdout_share=0.05))

    book_s, book = timed(lambda: ProfileBook(frame, model))
    here = parts(work / "here", book)
    empty = ProfileBook(frame.head(0), model)
    dataset = read_profiles(spark, str(profiles), model)
    traits = traits_on_spark(spark, dataset.frame, dataset.schema, model)
    there = parts(work / "there", empty, traits)
    ids = frame["customer_id"].to_list()
    budget = rows * 2.0
    local_s, _ = timed(lambda: apply_update(here, incident, ids, NOW, budget=budget, dry_run=True))
    spark_s, _ = timed(
        lambda: apply_on_spark(
            spark, there, dataset, incident, None, NOW, budget=budget, dry_run=True
        )
    )
    line(
        f"incident, {rows:,}, dry run", local_s + book_s, spark_s, "deciding only, nothing recorded"
    )
    local_s, local = timed(lambda: apply_update(here, incident, ids, NOW, budget=budget))
    spark_s, remote = timed(
        lambda: apply_on_spark(spark, there, dataset, incident, None, NOW, budget=budget)
    )

    def comparable(d: pl.DataFrame) -> pl.DataFrame:
        enums = [n for n, t in d.schema.items() if isinstance(t, pl.Enum)]
        return d.drop("perk_code", "text").with_columns(pl.col(enums).cast(pl.String))

    same = (
        comparable(remote.decisions)
        .sort("customer_id")
        .equals(comparable(local.decisions).sort("customer_id"))
    )
    assert same and remote.issued == local.issued == rows
    where = "PostgreSQL, executors write" if postgres else "SQLite, driver writes"
    line(
        f"incident, {rows:,} ({where})",
        local_s + book_s,
        spark_s,
        f"decisions equal (local includes {book_s:.1f} s segmenting the profile book)",
    )


def bench_scaling(profiles: Path, sizes: list[int], model: Any, repeat: int) -> None:
    from segmentation.spark import spark_session
    from segmentation.spark_segments import assign_on_spark, read_profiles

    print(f"\nscaling: assign every row and count per segment on Spark (best of {repeat})")
    print(f"  {'rows':>10}   {'local[1]':>9}   {'local[2]':>9}   speed-up")
    results: dict[tuple[int, str], float] = {}
    for master in ("local[1]", "local[2]"):
        spark = spark_session(master, **{"spark.sql.shuffle.partitions": "4"})
        for copies in sizes:
            frame = read_profiles(spark, [profiles] * copies)
            results[(copies, master)] = min(
                timed(
                    lambda f=frame, s=spark: (
                        assign_on_spark(s, f, model).groupBy("segment").count().collect()
                    )
                )[0]
                for _ in range(repeat)
            )
        spark.stop()
    base = pl.scan_parquet(profiles).select(pl.len()).collect().item()
    for copies in sizes:
        one, two = results[(copies, "local[1]")], results[(copies, "local[2]")]
        print(f"  {base * copies:>10,}   {one:8.2f}s   {two:8.2f}s   {one / two:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--only", choices=["derive", "segments", "incident", "scaling"])
    parser.add_argument("--repeat", type=int, default=2, help="scaling: best of N runs")
    parser.add_argument("--postgres", help="incident: record in new schemas of this database")
    args = parser.parse_args()

    from segmentation.spark import spark_session
    from segmentation.synth import synth_profiles, write_profiles

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        profiles = work / "profiles.parquet"
        write_profiles(synth_profiles(args.rows, 7).drop("latent_kind"), profiles)
        start_s, spark = timed(
            lambda: spark_session(args.master, **{"spark.sql.shuffle.partitions": "4"})
        )
        print(f"Spark {spark.version} on {args.master} (session start {start_s:.1f} s)")
        if args.only in (None, "derive"):
            bench_derive(spark, work)
        if args.only in (None, "segments"):
            model = bench_segments(spark, profiles, args.rows)
        if args.only in (None, "incident"):
            try:
                bench_incident(spark, profiles, args.rows, work, args.postgres)
            finally:
                _drop_schemas()
        spark.stop()
        if args.only == "scaling":
            from segmentation.model import train

            model = train(profiles, version="seg-0001", k=6, seed=7, sample_rows=200_000)
        if not args.no_scaling and args.only in (None, "scaling"):
            bench_scaling(profiles, [1, 2, 4], model, args.repeat)


if __name__ == "__main__":
    main()
