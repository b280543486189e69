"""Decisions written out a page at a time: JSON, NDJSON or Parquet, to a file or stdout.

A million decisions are never one answer in memory: each page is read from the ledger,
shaped and written before the next. A file is written beside its name and renamed when
whole, so a failure leaves no half-written file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import click
import msgspec
import polars as pl

from offers.flow import Outcome

__all__ = ["write_decisions"]

#: Decisions per page.
PAGE = 50_000


def _json(pages: Iterator[pl.DataFrame], lines: bool) -> Iterator[bytes]:
    """The bytes `msgspec.json.format` gives the whole list (or one line per decision),
    each page written by polars (`decisions_json`), not a Python object per field."""
    from api.http.wire import decisions_json, decisions_ndjson

    first = True
    for page in pages:
        if lines:
            yield decisions_ndjson(page)
            continue
        inner = msgspec.json.format(bytes(decisions_json(page)))[1:-1].strip(b"\n")
        if not inner:
            continue
        yield (b"[\n" if first else b",\n") + inner
        first = False
    if not lines:
        yield b"[]\n" if first else b"\n]\n"


def _parquet(pages: Iterator[pl.DataFrame], target: Path) -> None:
    """The pages as one Parquet file, streamed through polars' sink."""
    from polars.io.plugins import register_io_source

    first = next(pages, None)
    if first is None:
        return
    first = first.drop("followups")
    schema = first.schema

    def source(
        with_columns: list[str] | None, _predicate: object, _n: object, _size: object
    ) -> Iterator[pl.DataFrame]:
        for page in (first, *(p.drop("followups") for p in pages)):
            yield page if with_columns is None else page.select(with_columns)

    register_io_source(source, schema=schema).sink_parquet(target)


def write_decisions(outcome: Outcome, fmt: str, output: Path | None) -> None:
    """Every decision of the outcome's step in `fmt` (json, ndjson, parquet) to `output`,
    or to standard output."""
    pages = outcome.pages(PAGE)
    if output is None:
        for chunk in _json(pages, fmt == "ndjson"):
            click.echo(chunk.decode("utf-8"), nl=False)
        return
    partial = output.with_name(f".{output.name}.partial")
    try:
        if fmt == "parquet":
            _parquet(pages, partial)
            if not partial.exists():  # nobody decided: an empty file of the columns
                outcome.decisions.drop("followups").write_parquet(partial)
        else:
            with partial.open("wb") as fh:
                _write(fh, _json(pages, fmt == "ndjson"))
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


def _write(fh: IO[bytes], chunks: Iterator[bytes]) -> None:
    for chunk in chunks:
        fh.write(chunk)
