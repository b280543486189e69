"""`profiles derive --engine spark`: Spark SQL gives the polars path's profiles and report."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from api.cli import cli
from segmentation.derive import derive
from segmentation.snapshots import Snapshots
from segmentation.spark_derive import derive_on_spark

SLICE = Path(__file__).parent / "data" / "retail_slice.parquet"
COLUMNS = {
    "customer": "CustomerID",
    "time": "InvoiceDate",
    "amount": "Quantity*UnitPrice",
    "quantity": "Quantity",
    "invoice": "InvoiceNo",
}
ARGS = [
    "--customer=CustomerID",
    "--time=InvoiceDate",
    "--amount=Quantity*UnitPrice",
    "--quantity=Quantity",
    "--invoice=InvoiceNo",
]


@pytest.mark.parametrize("as_of", [None, datetime(2011, 6, 30)])
def test_spark_derives_the_same_profiles_and_report(
    spark: Any, tmp_path: Path, as_of: datetime | None
) -> None:
    """Returns, cancellations, rows left out, rows after as-of: every number equal."""
    local = derive(SLICE, as_of=as_of, **COLUMNS)
    remote = derive_on_spark(spark, [SLICE], workdir=tmp_path, as_of=as_of, **COLUMNS)
    assert_frame_equal(remote.profiles, local.profiles)
    got, want = msgspec.structs.asdict(remote.report), msgspec.structs.asdict(local.report)
    assert got.pop("returns_value") == pytest.approx(want.pop("returns_value"), abs=1e-6)
    assert got == want
    assert local.report.after_as_of_rows > 0 if as_of else local.report.return_rows > 0


def test_spark_reads_a_partitioned_folder(spark: Any, tmp_path: Path) -> None:
    """A log split into country= folders (as a data lake holds it) derives like one file."""
    lake = tmp_path / "lake"
    pl.read_parquet(SLICE).write_parquet(lake, partition_by="Country")
    assert len(list(lake.iterdir())) > 3
    local = derive(SLICE, **COLUMNS)
    remote = derive_on_spark(spark, [lake], workdir=tmp_path / "w", **COLUMNS)
    assert_frame_equal(remote.profiles, local.profiles)


def test_cli_derives_on_spark_and_imports(spark: Any, tmp_path: Path) -> None:
    data = tmp_path / "d"
    runner = CliRunner()
    local = runner.invoke(
        cli,
        [
            "--data",
            str(data),
            "profiles",
            "derive",
            str(SLICE),
            *ARGS,
            "-o",
            str(tmp_path / "local.parquet"),
        ],
    )
    assert local.exit_code == 0, local.output
    result = runner.invoke(
        cli,
        [
            "--data",
            str(data),
            "profiles",
            "derive",
            str(SLICE),
            *ARGS,
            "--import",
            "--engine",
            "spark",
            "--spark-master",
            "local[2]",
        ],
    )
    assert result.exit_code == 0, result.output
    latest = Snapshots(data).latest()
    assert latest is not None
    assert_frame_equal(pl.read_parquet(latest), pl.read_parquet(tmp_path / "local.parquet"))


def _cli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    import os

    code = "import sys\nfrom api.cli import cli\nsys.exit(cli.main(sys.argv[1:]))\n"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, **env},
        check=False,
    )


def test_without_java_one_line_says_what_to_install(tmp_path: Path) -> None:
    result = _cli(
        [
            "--data",
            str(tmp_path),
            "profiles",
            "derive",
            str(SLICE),
            *ARGS,
            "-o",
            str(tmp_path / "p.parquet"),
            "--engine",
            "spark",
        ],
        JAVA_HOME=str(tmp_path / "no-java"),
    )
    assert result.returncode == 1
    if "extra" in result.stderr:
        pytest.skip("pyspark is not installed here: the Java check comes after it")
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "Error: --engine spark needs Java 17+ (no java found): on Debian apt-get install "
        "openjdk-17-jre-headless, or set JAVA_HOME"
    ]
    assert not (tmp_path / "p.parquet").exists()


def test_without_the_extra_one_line_says_what_to_install(tmp_path: Path) -> None:
    """pyspark hidden from the interpreter, as in an install without `[spark]`."""
    code = (
        "import sys\nsys.modules['pyspark'] = None\nfrom api.cli import cli\n"
        "sys.exit(cli.main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "--data",
            str(tmp_path),
            "segments",
            "train",
            "--engine",
            "spark",
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: --engine spark needs the spark extra (pyspark is missing): "
        "pip install 'makegood[spark]'"
    ]


def test_nothing_imports_pyspark_without_the_engine() -> None:
    code = (
        "import sys, api.app, api.cli, offers.flow, segmentation.model, segmentation.spark\n"
        "import segmentation.spark_derive\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.stdout.strip() == "[]"
