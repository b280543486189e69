"""Reading a profile file in any supported format, bounded before it is materialised.

CSV and Excel are read as text, so values reach the import's checks untouched (a CSV cell
quoted against formula injection, as `profiles derive -o FILE.csv` writes it, loses that one
quote: see segmentation.cells). A file wider
than `MAX_COLUMNS`, or an XLSX sheet larger than `MAX_XLSX_CELLS`, is refused before its
rows are kept: a few kilobytes of either can otherwise ask for gigabytes.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from segmentation.cells import unguard_frame

__all__ = ["FORMATS", "MAX_COLUMNS", "MAX_XLSX_CELLS", "read_table"]

FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".xlsx": "xlsx",
}
"""File suffix -> format name."""

#: Wider files are refused before their rows are read (a profile has a few dozen columns).
MAX_COLUMNS = 1_000
#: Rows x columns of an XLSX sheet (100,000 customers of 20 columns); CSV and Parquet scale.
MAX_XLSX_CELLS = 2_000_000


def read_table(source: str | Path | bytes, fmt: str | None = None) -> pl.DataFrame:
    """Read a file as a frame; CSV and Excel as text, so values reach the checks untouched."""
    if fmt is None:
        if isinstance(source, bytes):
            raise ValueError("the format is needed to read bytes")
        suffix = Path(source).suffix.lower()
        if suffix not in FORMATS:
            raise ValueError(f"unsupported file type {suffix!r}: use {', '.join(FORMATS)}")
        fmt = FORMATS[suffix]
    data = io.BytesIO(source) if isinstance(source, bytes) else source
    if fmt == "csv":
        _check_width(pl.read_csv(data, infer_schema=False, n_rows=0).width)
        if isinstance(data, io.BytesIO):
            data.seek(0)
        return unguard_frame(pl.read_csv(data, infer_schema=False))
    if fmt == "parquet":
        _check_width(len(pl.read_parquet_schema(data)))
        if isinstance(data, io.BytesIO):
            data.seek(0)
        return pl.read_parquet(data)
    if fmt == "ndjson":
        frame = pl.read_ndjson(data, infer_schema_length=None)
        _check_width(frame.width)
        return frame
    if fmt == "xlsx":
        _check_sheet_size(data)
        if isinstance(data, io.BytesIO):
            data.seek(0)
        frame = pl.read_excel(data, engine="openpyxl", infer_schema_length=0, drop_empty_rows=False)
        assert isinstance(frame, pl.DataFrame)
        return frame
    raise ValueError(f"unsupported format {fmt!r}: use csv, parquet, ndjson or xlsx")


def _check_width(columns: int) -> None:
    if columns > MAX_COLUMNS:
        raise ValueError(f"{columns:,} columns, at most {MAX_COLUMNS:,} are read")


def _check_sheet_size(data: str | Path | io.BytesIO) -> None:
    """Refuse a first sheet larger than `MAX_XLSX_CELLS` before any cell is kept.

    A few kilobytes of XLSX can name a cell a million rows down: the sheet's declared
    size is checked first, then its rows are streamed and counted (nothing kept), stopping
    as soon as rows x widest row passes the bound.
    """
    import openpyxl

    book = openpyxl.load_workbook(data, read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        declared_rows, declared_columns = sheet.max_row or 0, sheet.max_column or 0
        _check_width(declared_columns)
        if declared_rows * declared_columns > MAX_XLSX_CELLS:
            raise ValueError(_too_many_cells(declared_rows, declared_columns))
        rows = width = 0
        for row in sheet.iter_rows(values_only=True):
            rows, width = rows + 1, max(width, len(row))
            _check_width(width)
            if rows * width > MAX_XLSX_CELLS:
                raise ValueError(_too_many_cells(rows, width))
    finally:
        book.close()


def _too_many_cells(rows: int, columns: int) -> str:
    return (
        f"the first sheet spans {rows:,} rows x {columns:,} columns; an XLSX file may hold "
        f"{MAX_XLSX_CELLS:,} cells: use CSV or Parquet for larger files"
    )
