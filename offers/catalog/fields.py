r"""The field types of an offer table: what a name, a title or a condition value may be.

Values in a condition are text without commas or surrounding spaces (and never the words
true/false, which are booleans): that keeps every table exactly representable in a
spreadsheet cell (see offers.catalog.tabular). A single value is stored as a one-item list.
The patterns are named so that error messages can explain them (offers.catalog.error_locations).

Every pattern in the code base ends in `(?!\n)$`, not `$`: msgspec searches, and Python's `$`
also matches before a final newline, so `^[A-Z]{3}$` took "TPE\n". The lookahead refuses it
and means the same in ECMA-262, which reads the patterns from the OpenAPI document (`\Z`
does not exist there).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = [
    "COLUMN_PATTERN",
    "LANGUAGE_PATTERN",
    "TEXT_PATTERN",
    "VALUE_HELP",
    "VALUE_PATTERN",
    "Airport",
    "Column",
    "Condition",
    "Id",
    "Language",
    "Range",
    "Text",
    "Title",
    "Value",
]

Id = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}(?!\n)$")]
Airport = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}(?!\n)$")]
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*(?!\n)$"
Language = Annotated[str, msgspec.Meta(pattern=LANGUAGE_PATTERN)]
COLUMN_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}(?!\n)$"
Column = Annotated[str, msgspec.Meta(pattern=COLUMN_PATTERN)]
#: Free text: no control characters but tab and newline (a spreadsheet cannot hold them).
TEXT_PATTERN = r"^[^\x00-\x08\x0b-\x1f\ufffe\uffff]*$"
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=TEXT_PATTERN)]
Text = Annotated[str, msgspec.Meta(max_length=2000, pattern=TEXT_PATTERN)]
#: One value of a condition: spreadsheet-safe text (see the module docstring).
VALUE_PATTERN = r"^(?!(?i:true|false)$)[^\s,](?:[^,]*[^\s,])?(?!\n)$"
Value = Annotated[str, msgspec.Meta(pattern=VALUE_PATTERN)]
VALUE_HELP = (
    "a condition value is text without commas or surrounding spaces; "
    "true/false are booleans, written without quotes"
)


class Range(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Inclusive numeric bounds; either side may be open, not both."""

    min: float | None = None
    max: float | None = None


Condition = Value | bool | Annotated[list[Value], msgspec.Meta(min_length=1)] | Range
