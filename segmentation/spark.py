"""Apache Spark for batch work that outgrows one machine (the optional `spark` extra).

Nothing here imports pyspark when the module loads: `spark_session()` does, and says in one
line what is missing (the extra, or Java 17+). Executors must run the driver's Python (the
same makegood, polars and scikit-learn), so PYSPARK_PYTHON defaults to this interpreter.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "BATCH_ROWS",
    "DEFAULT_MASTER",
    "MASTER_ENV",
    "SparkUnavailable",
    "java_major",
    "master_from_env",
    "require_spark",
    "spark_session",
    "spread",
]

MASTER_ENV = "MAKEGOOD_SPARK_MASTER"
BATCH_ROWS = 100_000
"""Rows per Arrow batch handed to Python on the executors: the engine and the encoder work
a batch at a time, and their fixed cost per call is spread over this many customers."""
DEFAULT_MASTER = "local[*]"
MIN_JAVA = 17
_INSTALL = "pip install 'makegood[spark]'"


class SparkUnavailable(RuntimeError):
    """The Spark engine cannot start here: the message says what to install."""


def master_from_env() -> str:
    """`MAKEGOOD_SPARK_MASTER`, else `local[*]` (every core of this machine)."""
    return os.environ.get(MASTER_ENV) or DEFAULT_MASTER


def java_major() -> int | None:
    """The major version of the `java` Spark would start (JAVA_HOME first), None if none."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if java is None or not os.path.exists(java):
        return None
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if found is None:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major  # "1.8" is Java 8


def require_spark() -> None:
    """Raise `SparkUnavailable` unless pyspark imports and Java 17+ is on this machine."""
    for name in ("pyspark", "pyarrow", "pandas"):  # pyspark's Arrow path imports pandas
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise SparkUnavailable(
                f"--engine spark needs the spark extra ({name} is missing): {_INSTALL}"
            ) from exc
    major = java_major()
    if major is None or major < MIN_JAVA:
        found = "no java found" if major is None else f"found Java {major}"
        raise SparkUnavailable(
            f"--engine spark needs Java {MIN_JAVA}+ ({found}): on Debian "
            "apt-get install openjdk-17-jre-headless, or set JAVA_HOME"
        )


def spark_session(master: str | None = None, **conf: Any) -> SparkSession:
    """The running SparkSession (under spark-submit), else a new one on `master`.

    Local masters get small shuffles and no web UI; a cluster's own settings are left alone.
    Time is UTC and Arrow carries data between the JVM and Python.
    """
    require_spark()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    builder = SparkSession.builder
    if master is None and "PYSPARK_GATEWAY_PORT" in os.environ:
        master = "submitted"  # under spark-submit: its --master holds
    else:
        master = master or master_from_env()
        builder = builder.master(master)
    builder = (
        builder.appName("makegood")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(BATCH_ROWS))
        .config("spark.executorEnv.PYSPARK_PYTHON", os.environ["PYSPARK_PYTHON"])
    )
    if master.startswith("local"):
        builder = (
            builder.config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 2)))
            .config("spark.driver.memory", os.environ.get("MAKEGOOD_SPARK_MEMORY", "4g"))
        )
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if master.startswith("local"):
        spark.sparkContext.setLogLevel("ERROR")
    return spark


def spread(frame: DataFrame) -> DataFrame:
    """`frame` in at least as many partitions as Spark runs tasks at once: one Parquet file
    is often one partition, which would leave every executor core but one idle."""
    cores = frame.sparkSession.sparkContext.defaultParallelism
    if frame.rdd.getNumPartitions() >= cores:
        return frame
    return frame.repartition(cores)
