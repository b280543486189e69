"""TOML values written by hand: the canonical, diff-friendly form of a table's fields.

The standard library reads TOML but does not write it; `dump_table` needs only strings,
numbers, booleans, lists, inline tables and ranges, each written the same way every time.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import msgspec

from offers.catalog.fields import Range

__all__ = ["toml_str", "toml_value"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_str(s: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, DEL aside)."""
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(k: str) -> str:
    return k if _BARE.fullmatch(k) else toml_str(k)


def _toml_num(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if math.isnan(x):
        return "nan"
    return repr(float(x))


def _whole(x: float) -> float | int:
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


def toml_value(v: Any) -> str:
    """A value as TOML, inline; structs as inline tables of all their fields."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _toml_num(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, Range):  # bounds read best as integers where they are whole
        bounds = {"min": v.min, "max": v.max}
        return toml_value({k: _whole(x) for k, x in bounds.items() if x is not None})
    if isinstance(v, msgspec.Struct):
        return toml_value({f: getattr(v, f) for f in v.__struct_fields__})
    raise TypeError(f"cannot write {type(v).__name__} as TOML")
