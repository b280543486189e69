"""Readable error locations for offer tables that do not decode.

msgspec reports `Expected ... - at $.rules[3].when[...]`; marketing reads a rule id and a
column. `locate` turns the one into the other, and explains the field patterns in words.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from offers.catalog.fields import (
    COLUMN_PATTERN,
    LANGUAGE_PATTERN,
    TEXT_PATTERN,
    VALUE_HELP,
    VALUE_PATTERN,
)

__all__ = ["locate"]

_PATH = re.compile(r"^(?P<what>.*?)(?: - at (?P<key>`key` in )?`\$(?P<path>[^`]*)`)?$", re.DOTALL)
_HELP = {
    VALUE_PATTERN: VALUE_HELP,
    COLUMN_PATTERN: "a column name is letters, digits and _",
    LANGUAGE_PATTERN: "a language is a tag such as en or zh-Hant",
    TEXT_PATTERN: "text may not hold control characters (tab and newline are fine)",
}
_ITEM = re.compile(r"^\.(rules|perks)\[(\d+)\]\.?(.*)$")


_VALUE = re.compile(VALUE_PATTERN)


def _readable(cond: Any) -> bool:
    """Whether a raw condition converts (checked in Python: msgspec is not re-entered here)."""
    if isinstance(cond, bool):
        return True
    if isinstance(cond, str):
        return _VALUE.match(cond) is not None
    if isinstance(cond, list):
        return bool(cond) and all(isinstance(v, str) and _readable(v) for v in cond)
    if isinstance(cond, dict):
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in cond.values())
        return set(cond) <= {"min", "max"} and numbers
    return False


def locate(exc: msgspec.ValidationError, raw: Any, source: str) -> str:
    """Turn msgspec's `$.rules[3].when[...]` into `rule <id>, field when.<column>`."""
    found = _PATH.match(str(exc))
    assert found is not None
    what, path = found["what"], found["path"] or ""
    pattern = re.search(r"matching regex '(.*)'$", what)
    if pattern is not None and pattern[1].replace("\\\\", "\\") in _HELP:
        what = _HELP[pattern[1].replace("\\\\", "\\")]
    if found["key"]:
        what = f"key: {what}"
    item = _ITEM.match(path)
    if item is None:
        return f"{source}: {what}" + (f" (at {path.lstrip('.')})" if path else "")
    section, index, field = item[1], int(item[2]), item[3]
    entry = raw.get(section, [])[index] if isinstance(raw, dict) else None
    ident = entry.get("id") if isinstance(entry, dict) else None
    label = f"{section[:-1]} {ident}" if isinstance(ident, str) else f"{section}[{index}]"
    when = entry.get("when") if isinstance(entry, dict) else None
    if field.startswith("when[...]") and isinstance(when, dict):
        field = next((f"when.{c}" for c, v in when.items() if not _readable(v)), field)
    return f"{source}: {label}" + (f", field {field}" if field else "") + f": {what}"
