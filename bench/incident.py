"""The incident engine on a million customers, next to the alternatives, in one run.

    python bench/incident.py                       # 1,000,000 customers, SQLite + PostgreSQL
    python bench/incident.py --customers 200000 --no-postgres
    python bench/incident.py --no-sqlite --no-http    # the PostgreSQL end to end only

Prints, as ratios against the alternatives measured in the same run:
- engine only (segment assignment + rule match + policy + allocation + rendered message)
  vs a per-customer Python loop over the same rules and vs GoRules zen-engine evaluating
  the same table as a JDM decision table (`pip install zen-engine`; both alternatives do
  rule matching only, on a sample, extrapolated);
- end to end with ledger writes into SQLite and PostgreSQL, and the replay of the same
  update (nothing new issued);
- peak resident memory of a process deciding the million-customer incident;
- single-customer preview over HTTP next to a trivial endpoint (bench/preview.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offers.catalog.coverage import personas_of, resolve  # noqa: E402
from offers.catalog.fields import Range  # noqa: E402
from offers.catalog.matching import ordered_rules  # noqa: E402
from offers.catalog.tables import OfferTable, load_default_table  # noqa: E402
from offers.decide.context import StepContext  # noqa: E402
from offers.decide.engine import decide  # noqa: E402
from offers.flow import CHUNK, Parts, apply_update  # noqa: E402
from offers.incidents.kinds import EscalationPolicy, FlightFacts, Incident  # noqa: E402
from offers.ledger.db import create_engine, upgrade  # noqa: E402
from offers.ledger.store import Ledger  # noqa: E402
from offers.messages.book import load_default_book  # noqa: E402
from offers.record import HISTORY_SCHEMA, RECENT_SCHEMA  # noqa: E402
from segmentation.book import ProfileBook  # noqa: E402
from segmentation.model import Segmentation, train  # noqa: E402
from segmentation.synth import synth_profiles  # noqa: E402
from segmentation.traits import segment_traits  # noqa: E402

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def timed(fn: Any, repeat: int = 1) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def incident(incident_id: str, delay: int = 50) -> Incident:
    return Incident(
        incident_id=incident_id,
        kind="flight_delay",
        occurred_at=datetime(2026, 11, 23, 7, tzinfo=UTC),
        facts=FlightFacts(
            delay_minutes=delay,
            flight="MG123",
            origin="TPE",
            destination="LHR",
            carrier_country="TW",
        ),
    )


# --- the alternatives: matching only ---------------------------------------------------


def _holds(value: Any, cond: Any) -> bool:
    if isinstance(cond, Range):
        return (cond.min is None or value >= cond.min) and (cond.max is None or value <= cond.max)
    if isinstance(cond, bool):
        return bool(value == cond)
    values = [cond] if isinstance(cond, str) else cond
    return value in values


def python_loop(rows: list[dict[str, Any]], table: OfferTable) -> list[str | None]:
    """The naive engine: for each customer, walk the rules until one holds."""
    rules = ordered_rules(table)
    out: list[str | None] = []
    for row in rows:
        chosen = None
        for rule in rules:
            if all(_holds(row.get(col), cond) for col, cond in rule.when.items()):
                chosen = rule.perk
                break
        out.append(chosen)
    return out


def _zen_cell(cond: Any) -> str:
    if isinstance(cond, Range):
        parts = []
        if cond.min is not None:
            parts.append(f">= {cond.min:g}")
        if cond.max is not None:
            parts.append(f"<= {cond.max:g}")
        return " and ".join(parts)
    if isinstance(cond, bool):
        return "true" if cond else "false"
    values = [cond] if isinstance(cond, str) else cond
    return ", ".join(json.dumps(v) for v in values)


def zen_table(table: OfferTable) -> dict[str, Any]:
    """The offer table as a GoRules JDM decision table (first hit)."""
    rules = ordered_rules(table)
    columns = sorted({c for r in rules for c in r.when})
    inputs = [{"id": f"i_{c}", "name": c, "field": c} for c in columns]
    rows = []
    for rule in rules:
        row = {"_id": rule.id, "o_perk": json.dumps(rule.perk)}
        for c in columns:
            row[f"i_{c}"] = _zen_cell(rule.when[c]) if c in rule.when else ""
        rows.append(row)
    node = {
        "hitPolicy": "first",
        "inputs": inputs,
        "outputs": [{"id": "o_perk", "name": "perk", "field": "perk"}],
        "rules": rows,
    }
    return {
        "contentType": "application/vnd.gorules.decision",
        "nodes": [
            {"id": "in", "type": "inputNode", "name": "in", "position": {"x": 0, "y": 0}},
            {
                "id": "t",
                "type": "decisionTableNode",
                "name": "offers",
                "position": {"x": 200, "y": 0},
                "content": node,
            },
            {"id": "out", "type": "outputNode", "name": "out", "position": {"x": 400, "y": 0}},
        ],
        "edges": [
            {"id": "e1", "type": "edge", "sourceId": "in", "targetId": "t"},
            {"id": "e2", "type": "edge", "sourceId": "t", "targetId": "out"},
        ],
    }


def zen_batch(rows: list[dict[str, Any]], table: OfferTable) -> list[str | None]:
    import zen

    engine = zen.ZenEngine({"loader": {"type": "static", "content": {"t": zen_table(table)}}})
    out: list[str | None] = []
    for start in range(0, len(rows), 10_000):
        batch = [{"key": "t", "context": r} for r in rows[start : start + 10_000]]
        for result in engine.evaluate_batch(batch):
            out.append(result["data"]["result"].get("perk") if result.get("success") else None)
    return out


# --- sections ------------------------------------------------------------------------


def served_table(book: ProfileBook) -> OfferTable:
    """The shipped table as a server has it: personas resolved to these segments."""
    table = load_default_table()
    return resolve(table, personas_of(table, segment_traits(book.frame)))


def engine_only(book: ProfileBook, model: Segmentation, n: int, sample: int) -> None:
    table, messages = served_table(book), load_default_book()
    customers = book.frame
    raw = customers.drop("segment", "segment_description")
    t_assign, _ = timed(lambda: model.assign(raw), repeat=2)
    ctx = StepContext(incident=incident("BENCH"), step=2, now=datetime.now(UTC))
    history, recent = pl.DataFrame(schema=HISTORY_SCHEMA), pl.DataFrame(schema=RECENT_SCHEMA)
    t_decide, out = timed(lambda: decide(customers, history, recent, ctx, table, messages), 2)
    ours = t_assign + t_decide
    rows = (
        customers.head(sample)
        .select("segment", "tier")
        .with_columns(step=pl.lit(2), kind=pl.lit("flight_delay"), delay_minutes=pl.lit(50))
        .to_dicts()
    )
    t_loop, loop_perks = timed(lambda: python_loop(rows, table))
    loop_full = t_loop * n / sample
    print(f"engine only, {n:,} customers (best of 2):")
    print(f"  segment assignment                {t_assign:8.3f} s")
    print(f"  decide (match, policy, render)    {t_decide:8.3f} s   {out.height:,} decisions")
    print(f"  makegood total                    {ours:8.3f} s")
    print(
        f"  per-customer Python loop          {loop_full:8.3f} s   (matching only; "
        f"{sample:,} measured, x{n // sample})  -> makegood is {loop_full / ours:.1f}x faster "
        "(target >= 10x)"
    )
    small, one = (
        small_incident(customers.head(k), history, recent, ctx, table, messages) for k in (300, 1)
    )
    print(
        f"  decide 300 customers              {small * 1000:8.1f} ms  (median of {SMALL_CALLS}); "
        f"1 customer {one * 1000:.1f} ms: the fixed cost per call is {one / small:.0%} of it"
    )
    try:
        t_zen, zen_perks = timed(lambda: zen_batch(rows, table))
    except ImportError:
        print("  zen-engine                        not installed (pip install zen-engine)")
        return
    zen_full = t_zen * n / sample
    same = sum(a == b for a, b in zip(loop_perks, zen_perks, strict=True)) / len(rows)
    print(
        f"  zen-engine evaluate_batch         {zen_full:8.3f} s   (matching only; "
        f"agrees with the loop on {same:.1%})  -> makegood is {zen_full / ours:.1f}x faster"
    )


#: calls of a small incident's decide timed for its median
SMALL_CALLS = 200


def small_incident(customers: pl.DataFrame, *args: Any) -> float:
    """Median seconds of one decide over `customers`: what the service desk's small
    incidents (50-300 passengers) pay, nearly all of it fixed cost per call."""
    decide(customers, *args)  # what is prepared once per table and book
    times = []
    for _ in range(SMALL_CALLS):
        start = time.perf_counter()
        decide(customers, *args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def end_to_end(book: ProfileBook, url: str, label: str, n: int) -> None:
    engine = create_engine(url)
    upgrade(engine)
    ledger = Ledger(engine)
    table, messages = served_table(book), load_default_book()
    parts = Parts(book.select, book.unknown, ledger, lambda _k: table, messages, EscalationPolicy())
    ids = book.frame["customer_id"].to_list()
    inc = incident(f"BENCH-{uuid.uuid4().hex[:8]}")
    wal = _wal_position(engine)
    t_first, first = timed(lambda: apply_update(parts, inc, ids, datetime.now(UTC)))
    written = _written(engine, wal)
    t_again, again = timed(lambda: apply_update(parts, inc, ids, datetime.now(UTC)))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"end to end into {label}, {n:,} customers (load average before: {load}):")
    print(f"  first update (decide + write)     {t_first:8.3f} s   {first.issued:,} issued")
    print(f"  same update again                 {t_again:8.3f} s   {again.issued:,} issued")
    print(f"  stored: {written}")
    engine.dispose()


def _wal_position(engine: Any) -> str | None:
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        return str(conn.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar())


def _written(engine: Any, wal: str | None) -> str:
    """What the first update left on disk: tables with their indexes, and WAL written."""
    mib = 1024 * 1024
    with engine.connect() as conn:
        if engine.dialect.name != "postgresql":
            files = [Path(engine.url.database), Path(f"{engine.url.database}-wal")]
            size = sum(f.stat().st_size for f in files if f.exists())
            return f"database and its WAL file {size / mib:,.0f} MiB"
        sizes = conn.exec_driver_sql(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r'"
            " AND relnamespace = current_schema()::regnamespace ORDER BY 2 DESC LIMIT 3"
        ).all()
        logged = conn.exec_driver_sql(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (wal,)
        ).scalar()
    tables = ", ".join(f"{name} {size / mib:,.0f} MiB" for name, size in sizes)
    return f"{tables}; WAL {float(logged or 0) / mib:,.0f} MiB"


def peak_memory(n: int) -> None:
    # VmHWM, not ru_maxrss: the latter survives exec and would report this (parent) process.
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        f"from bench.incident import _memory_child; _memory_child({n})\n"
        "status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
        "print(status)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak_kib = int(out.stdout.strip().splitlines()[-1])
    print(f"peak resident memory deciding {n:,} customers: {peak_kib / 1024 / 1024:.2f} GiB")


def _memory_child(n: int) -> None:
    profiles = synth_profiles(n, 7).drop("latent_kind")
    model = train(profiles.sample(20_000, seed=1), version="bench", k=5, seed=7)
    book = ProfileBook(profiles, model)
    ctx = StepContext(incident=incident("MEM"), step=2, now=datetime.now(UTC))
    decide(
        book.frame,
        pl.DataFrame(schema=HISTORY_SCHEMA),
        pl.DataFrame(schema=RECENT_SCHEMA),
        ctx,
        served_table(book),
        load_default_book(),
    )


# --- the CLI path: `makegood incidents apply` in a fresh process --------------------------

#: Targets of the CLI path, as multiples of the per-customer loop timed in the same run.
CLI_TARGETS = {"dry run": 2.0, "recorded": 6.0, "replay": 3.0}
#: Every CLI run's peak resident memory stays below this (GiB).
CLI_PEAK_GIB = 3.0


def cli_folder(root: Path, profiles: pl.DataFrame, model: Segmentation) -> Path:
    """A data folder holding `profiles` as its snapshot and `model` as the active
    segmentation (the first CLI run publishes the shipped tables and books)."""
    from segmentation.registry import Registry
    from segmentation.synth import write_profiles

    (root / "profiles").mkdir(parents=True)
    write_profiles(profiles, root / "profiles" / "snapshot-0001.parquet")
    registry = Registry(root / "models")
    registry.save(model)
    registry.promote(model.card.version)
    return root


def run_cli(data: Path, *args: str, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Seconds, peak resident GiB (the child's VmHWM) and standard output of one
    `makegood --data DATA ARGS…` in a fresh interpreter, as an operator runs it."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from api.cli.main import cli\n"
        "try:\n"
        "    cli.main(sys.argv[1:], prog_name='makegood', standalone_mode=False)\n"
        "finally:\n"
        "    hwm = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
        "    sys.stderr.write(f'\\nVMHWM {hwm}\\n')\n"
    )
    argv = [sys.executable, "-c", code, "--data", str(data), *args]
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"makegood {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    peak_kib = int(out.stderr.rsplit("VMHWM", 1)[1].split()[0])
    return seconds, peak_kib / 1024 / 1024, out.stdout


def loop_seconds(book: ProfileBook, n: int, sample: int = 100_000) -> float:
    """The per-customer Python loop (rule matching alone), timed on `sample` customers and
    extrapolated to `n`, as `engine_only` times it."""
    sample = min(sample, n)
    rows = (
        book.frame.head(sample)
        .select("segment", "tier")
        .with_columns(step=pl.lit(2), kind=pl.lit("flight_delay"), delay_minutes=pl.lit(50))
        .to_dicts()
    )
    table = served_table(book)
    seconds, _ = timed(lambda: python_loop(rows, table))
    return seconds * n / sample


def cli_path(profiles: pl.DataFrame, model: Segmentation, book: ProfileBook) -> None:
    """`makegood incidents apply FILE` on every profile: dry run, recorded into SQLite,
    and the same file replayed, each in a fresh process, beside the loop timed now."""
    n = profiles.height
    with tempfile.TemporaryDirectory() as tmp:
        data = cli_folder(Path(tmp) / "data", profiles, model)
        body = {
            "incident_id": f"CLI-{uuid.uuid4().hex[:8]}",
            "kind": "flight_delay",
            "occurred_at": "2026-11-23T07:00:00Z",
            "facts": {
                "delay_minutes": 50,
                "flight": "MG123",
                "origin": "TPE",
                "destination": "LHR",
                "carrier_country": "TW",
            },
            "customers": profiles["customer_id"].to_list(),
        }
        path = Path(tmp) / "incident.json"
        path.write_bytes(json.dumps(body).encode())
        run_cli(data, "incidents", "apply", str(path), "--dry-run")  # bootstraps the folder
        loop = loop_seconds(book, n)
        runs = {
            "dry run": run_cli(data, "incidents", "apply", str(path), "--dry-run"),
            "recorded": run_cli(data, "incidents", "apply", str(path)),
            "replay": run_cli(data, "incidents", "apply", str(path)),
        }
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"CLI path, `makegood incidents apply` on {n:,} customers (load average: {load}):")
    print(
        f"  per-customer Python loop          {loop:8.3f} s   (matching only, 100,000 timed and "
        "extrapolated: the gauge)"
    )
    for label, (seconds, peak, _out) in runs.items():
        ratio, target = seconds / loop, CLI_TARGETS[label]
        met = "met" if ratio <= target and peak < CLI_PEAK_GIB else "NOT met"
        print(
            f"  {label:<33} {seconds:8.3f} s   {ratio:5.1f}x the loop (target <= {target:g}x), "
            f"peak {peak:.2f} GiB (target < {CLI_PEAK_GIB:g}) -> {met}"
        )


# --- scaling: one incident over 100k, 1M and 10M customers on PostgreSQL -----------------

#: A 10M-customer incident stays below this peak (GiB) and this multiple of the 1M time.
SCALE_PEAK_GIB = 4.0
SCALE_TIME_RATIO = 12.0


def scale_profiles(path: Path, rows: int, chunk: int = 1_000_000) -> float:
    """`rows` synthetic profiles in one Parquet file, written `chunk` rows at a time (as
    bench/segments.py writes its 10M file); seconds taken."""
    start = time.perf_counter()
    parts = path.parent / "parts"
    parts.mkdir()
    for i, offset in enumerate(range(0, rows, chunk)):
        frame = synth_profiles(min(chunk, rows - offset), seed=1000 + i).drop("latent_kind")
        frame = frame.with_columns(customer_id=pl.format("p{}-{}", pl.lit(i), "customer_id"))
        frame.write_parquet(parts / f"part-{i:04d}.parquet", row_group_size=100_000)
        del frame
    pl.scan_parquet(parts / "*.parquet").sink_parquet(path, row_group_size=100_000)
    for part in parts.iterdir():
        part.unlink()
    parts.rmdir()
    return time.perf_counter() - start


class FileProfiles:
    """Profiles read from a Parquet file a chunk at a time, as a service too large to hold
    them all would: a chunk of ids is a run of rows (the incident names everyone, in file
    order), found by its first and last id, read by slicing the file and segmented then."""

    def __init__(self, path: Path, n: int, model: Segmentation) -> None:
        self.path, self.n, self.model = path, n, model
        ids = pl.scan_parquet(path).head(n).select("customer_id").collect()
        self.ids = ids.with_row_index("_row")

    def select(self, ids: Any) -> pl.DataFrame:
        from segmentation.ids import id_hash

        asked = pl.DataFrame({"customer_id": ids}, schema={"customer_id": pl.String})
        ends = self.ids.filter(pl.col("customer_id").is_in([ids[0], ids[-1]]))["_row"]
        first, last = int(ends.min()), int(ends.max())  # type: ignore[arg-type]
        if last - first + 1 != asked.height:  # not a run of rows: find each id
            rows = asked.join(self.ids, on="customer_id", how="inner")["_row"]
            first, last = int(rows.min()), int(rows.max())  # type: ignore[arg-type]
        frame = pl.scan_parquet(self.path).slice(first, last - first + 1).collect()
        frame = frame.join(asked, on="customer_id", how="semi")
        return self.model.assign(frame).with_columns(id_hash(frame["customer_id"]))

    def unknown(self, ids: Any) -> list[str]:
        asked = pl.DataFrame({"customer_id": ids}, schema={"customer_id": pl.String})
        return asked.join(self.ids, on="customer_id", how="anti")["customer_id"].to_list()


def _scale_child(path: str, n: int, url: str, chunk: int) -> None:
    """Child process: one incident over the first `n` profiles of `path`, recorded into
    the database at `url`; prints decide and write seconds, total and peak."""
    from offers.ledger.transaction import Tx

    sample = pl.scan_parquet(path).head(20_000).collect()
    model = train(sample, version="bench", k=5, seed=7)
    table = served_table(ProfileBook(sample, model))
    profiles = FileProfiles(Path(path), n, model)
    engine = create_engine(url)
    upgrade(engine)
    parts = Parts(
        profiles.select,
        profiles.unknown,
        Ledger(engine),
        lambda _k: table,
        load_default_book(),
        EscalationPolicy(),
    )
    writing = [0.0]
    record = Tx.record

    def timed_record(self: Tx, *args: Any, **kwargs: Any) -> int:
        start = time.perf_counter()
        try:
            return record(self, *args, **kwargs)
        finally:
            writing[0] += time.perf_counter() - start

    Tx.record = timed_record  # type: ignore[method-assign]
    ids = profiles.ids["customer_id"]
    start = time.perf_counter()
    out = apply_update(parts, incident(f"SCALE-{n}"), ids, datetime.now(UTC), chunk_size=chunk)
    total = time.perf_counter() - start
    assert out.issued == n, out.issued
    hwm = Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]
    print(json.dumps({"total": total, "write": writing[0], "peak_kib": int(hwm)}))
    engine.dispose()


def scaling(sizes: list[int], postgres: str, chunk: int) -> None:
    """The same incident over each size, each in a fresh process on a fresh PostgreSQL
    schema: decide (everything but the writes), write, total, peak memory."""
    biggest = max(sizes)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "profiles.parquet"
        print(f"writing {biggest:,} profiles in 1,000,000-row chunks…", flush=True)
        print(f"  {scale_profiles(path, biggest):.1f} s", flush=True)
        rows = {}
        for n in sorted(sizes):
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(postgres)
            with admin.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            try:
                url = f"{postgres}?options=-csearch_path%3D{schema}"
                code = (
                    f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
                    f"from bench.incident import _scale_child\n"
                    f"_scale_child({str(path)!r}, {n}, {url!r}, {chunk})\n"
                )
                done = subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, check=False
                )
                if done.returncode != 0:
                    raise RuntimeError(f"{n:,} customers failed:\n{done.stderr[-3000:]}")
                rows[n] = json.loads(done.stdout.strip().splitlines()[-1])
            finally:
                with admin.begin() as conn:
                    conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
                admin.dispose()
            r = rows[n]
            print(
                f"  {n:>12,} customers: decide {r['total'] - r['write']:7.1f} s, write "
                f"{r['write']:7.1f} s, total {r['total']:7.1f} s, "
                f"peak {r['peak_kib'] / 1024 / 1024:.2f} GiB",
                flush=True,
            )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"scaling on PostgreSQL (load average after: {load}):")
    if 1_000_000 in rows and biggest > 1_000_000:
        big, one = rows[biggest], rows[1_000_000]
        ratio, peak = big["total"] / one["total"], big["peak_kib"] / 1024 / 1024
        factor = biggest / 1_000_000
        met = "met" if ratio <= SCALE_TIME_RATIO and peak < SCALE_PEAK_GIB else "NOT met"
        print(
            f"  {biggest:,} vs 1,000,000: {ratio:.1f}x the time for {factor:g}x the customers "
            f"(target <= {SCALE_TIME_RATIO:g}x), peak {peak:.2f} GiB "
            f"(target < {SCALE_PEAK_GIB:g}) -> {met}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=100_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-http", action="store_true", help="skip bench/preview.py")
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--no-cli", action="store_true", help="skip `makegood incidents apply`")
    parser.add_argument("--cli-only", action="store_true", help="only the CLI path")
    parser.add_argument(
        "--scale",
        nargs="?",
        const="100000,1000000,10000000",
        help="only the scaling table on PostgreSQL, over these sizes (default 100k, 1M, 10M)",
    )
    parser.add_argument("--chunk", type=int, default=CHUNK, help="customers decided at once")
    args = parser.parse_args()
    if args.scale:
        scaling([int(x) for x in args.scale.split(",")], args.postgres, args.chunk)
        return
    n = args.customers
    profiles = synth_profiles(n, 7).drop("latent_kind")
    model = train(profiles.sample(min(n, 20_000), seed=1), version="bench", k=5, seed=7)
    book = ProfileBook(profiles, model)
    if not args.no_cli:
        cli_path(profiles, model, book)
    if args.cli_only:
        return
    engine_only(book, model, n, min(args.sample, n))
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            end_to_end(book, f"sqlite:///{tmp}/bench.db", "SQLite", n)
    if not args.no_postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        try:
            end_to_end(book, f"{args.postgres}?options=-csearch_path%3D{schema}", "PostgreSQL", n)
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            admin.dispose()
    peak_memory(n)
    if not args.no_http:
        from bench.preview import http_section

        http_section()
    print(
        f"(ru_maxrss of this process: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024:.2f} GiB)"
    )


if __name__ == "__main__":
    main()
