"""`--engine local|spark` and `--spark-master`: where a batch command runs its heavy work."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import click

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["Engine", "engine_options", "open_spark"]

Engine = Literal["local", "spark"]


def engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds `engine` and `spark_master` parameters to a command."""
    command = click.option(
        "--spark-master",
        envvar="MAKEGOOD_SPARK_MASTER",
        help="Spark master URL (default local[*]; under spark-submit, its session). "
        "Env: MAKEGOOD_SPARK_MASTER.",
    )(command)
    return click.option(
        "--engine",
        type=click.Choice(["local", "spark"]),
        default="local",
        show_default=True,
        help="local: polars on this machine; spark: Apache Spark (pip install '.[spark]').",
    )(command)


def open_spark(master: str | None) -> SparkSession:
    """The SparkSession, or one `Error:` line saying what is missing (extra, Java)."""
    from segmentation.spark import SparkUnavailable, spark_session

    try:
        return spark_session(master)
    except SparkUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
