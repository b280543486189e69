"""Who an incident affects, named without listing them: everyone, a profile filter, an id file.

A national outage or an airport closure touches millions of customers; naming them as a JSON
array is the wrong tool. A `Selector` says who instead, is checked against the profiles'
columns before anything is written (`check`), and is resolved into ids over the segmented
profiles (`resolve`) by the update itself, so a job that is taken over resolves it again
the same way. Filters are equality or one-of on a profile column; id files are Parquet (a
`customer_id` column) or NDJSON (one id, or one `{"customer_id": …}` object, per line).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec
import polars as pl

__all__ = ["Selector", "SelectorError", "check", "count", "keep_id_file", "read_id_file", "resolve"]

#: Columns a filter may not name: contact details and names never select anyone (they would
#: sit in job inputs and logs), and the id is what an id file is for.
UNFILTERABLE = frozenset({"customer_id", "first_name", "email", "phone"})


class SelectorError(ValueError):
    """A selector that cannot select: `field` names the part at fault (`customers.where.tier`)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class Selector(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Exactly one of: `everyone`, `where` (column -> one value or a list of values; a
    customer is selected when every column holds one of its values), or `ids_file` (a
    Parquet or NDJSON file of customer ids)."""

    everyone: bool = False
    where: dict[str, Any] | None = None
    ids_file: str | None = None

    def describe(self) -> str:
        if self.everyone:
            return "everyone"
        if self.where is not None:
            return "where " + ", ".join(f"{k}={v}" for k, v in self.where.items())
        return f"ids in {Path(self.ids_file or '').name}"


def check(selector: Selector, schema: pl.Schema, field: str = "customers") -> None:
    """Refuse a selector that names no way, or several, or a column or value the profiles
    cannot have; the error names the field at fault."""
    ways = [selector.everyone, selector.where is not None, selector.ids_file is not None]
    if sum(ways) != 1:
        raise SelectorError(field, "give exactly one of everyone, where, or an id file")
    if selector.where is None:
        return
    if not selector.where:
        raise SelectorError(f"{field}.where", "name at least one profile column")
    for column, values in selector.where.items():
        _values(f"{field}.where.{column}", column, values, schema)


def _values(field: str, column: str, raw: Any, schema: pl.Schema) -> list[Any]:
    """The filter's values for `column`, typed as the profiles hold it."""
    if column not in schema or column.startswith("_"):
        known = ", ".join(
            c
            for c, t in schema.items()
            if c not in UNFILTERABLE and not c.startswith("_") and not isinstance(t, pl.List)
        )
        raise SelectorError(field, f"no profile column {column!r} (filterable: {known})")
    if column in UNFILTERABLE:
        raise SelectorError(field, f"{column!r} cannot select customers")
    dtype = schema[column]
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise SelectorError(field, "give at least one value")
    if isinstance(dtype, pl.List | pl.Struct | pl.Array):
        raise SelectorError(field, f"{column!r} holds lists: it cannot be filtered on")
    typed = []
    for value in values:
        try:
            one = pl.Series([value]).cast(pl.String).cast(dtype, strict=True)
        except (pl.exceptions.PolarsError, TypeError, ValueError):
            one = None
        if isinstance(dtype, pl.Enum) and value not in dtype.categories.to_list():
            choices = ", ".join(dtype.categories.to_list())
            raise SelectorError(field, f"{value!r} is not one of {choices}")
        if one is None or one.null_count():
            raise SelectorError(field, f"{value!r} is not a {dtype} value")
        typed.append(one[0])
    return typed


def read_id_file(path: Path, field: str = "customers.ids", name: str | None = None) -> pl.Series:
    """The distinct ids of a Parquet or NDJSON id file, in file order (`name`: the file's
    name in errors, if not its own)."""
    name = name or path.name
    try:
        if path.suffix.lower() == ".parquet":
            frame = pl.read_parquet(path)
        else:
            frame = _ndjson_ids(path.read_bytes())
    except FileNotFoundError:
        raise SelectorError(field, f"no file {name}") from None
    except (pl.exceptions.PolarsError, OSError, msgspec.DecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SelectorError(
            field, f"{name} is not a Parquet or NDJSON id file ({reason})"
        ) from None
    if "customer_id" not in frame.columns:
        raise SelectorError(field, f"{name} has no customer_id column")
    ids = frame["customer_id"]
    if ids.dtype != pl.String:
        raise SelectorError(field, f"{name}: customer_id must be text, not {ids.dtype}")
    if ids.null_count() or not ids.str.len_chars().is_between(1, 64).all():
        raise SelectorError(field, f"{name}: every customer_id must be 1 to 64 characters")
    return ids.unique(maintain_order=True)


def _ndjson_ids(data: bytes) -> pl.DataFrame:
    """One id per line: a JSON string, or an object with a `customer_id`."""
    lines = [line for line in data.splitlines() if line.strip()]
    decoded = msgspec.json.decode(b"[" + b",".join(lines) + b"]", type=list[str | dict[str, Any]])
    ids = [d if isinstance(d, str) else d.get("customer_id") for d in decoded]
    if any(not isinstance(i, str) for i in ids):
        raise msgspec.DecodeError("each line must be an id or an object with a customer_id")
    return pl.DataFrame({"customer_id": ids}, schema={"customer_id": pl.String})


def resolve(selector: Selector, profiles: pl.DataFrame, field: str = "customers") -> pl.Series:
    """The ids `selector` names among `profiles` (segmented, one row per customer), in
    profile order; an id file's ids as given (unknown ones are the caller's to refuse)."""
    check(selector, profiles.schema, field)
    if selector.everyone:
        return profiles["customer_id"]
    if selector.ids_file is not None:
        return read_id_file(Path(selector.ids_file), f"{field}.ids")
    assert selector.where is not None
    keep = [
        pl.col(column).is_in(_values(f"{field}.where.{column}", column, raw, profiles.schema))
        for column, raw in selector.where.items()
    ]
    return profiles.filter(*keep)["customer_id"]


def count(selector: Selector, profiles: pl.DataFrame, field: str = "customers") -> int:
    """How many customers `selector` names, without listing them."""
    check(selector, profiles.schema, field)
    if selector.everyone:
        return profiles.height
    if selector.ids_file is not None:
        return read_id_file(Path(selector.ids_file), f"{field}.ids").len()
    return resolve(selector, profiles, field).len()


def keep_id_file(data: bytes, suffix: str, folder: Path, field: str = "file") -> tuple[str, int]:
    """Check an uploaded id file and keep its distinct ids as Parquet under `folder`, named
    by the digest of the ids: the same ids uploaded again are the same upload. Returns the
    name (without `.parquet`) and how many ids it holds."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / f".{hashlib.sha256(data).hexdigest()}{suffix}.partial"
    try:
        raw.write_bytes(data)
        ids = read_id_file(raw, field, name=f"the {suffix.lstrip('.')} file")
    finally:
        raw.unlink(missing_ok=True)
    digest = hashlib.sha256("\n".join(ids.to_list()).encode()).hexdigest()
    target = folder / f"{digest}.parquet"
    if not target.exists():
        partial = folder / f".{digest}.parquet.partial"
        ids.to_frame().write_parquet(partial)
        partial.replace(target)
    return digest, ids.len()
