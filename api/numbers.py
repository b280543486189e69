"""Whole numbers typed by a client (a query, a form field, a cookie), read without trust.

`str.isdigit` takes "²" and "٣", `int()` refuses more than 4,300 digits, and the databases
hold 32- or 64-bit integers; a number that none of them can take must come back as "not a
number we know", never as a 500.
"""

from __future__ import annotations

import re

__all__ = ["INT32_MAX", "INT64_MAX", "whole_number"]

INT32_MAX = 2**31 - 1
"""The largest INTEGER PostgreSQL stores (offer-table versions, steps)."""
INT64_MAX = 2**63 - 1
"""The largest integer SQLite stores, and PostgreSQL's BIGINT."""

_DIGITS = re.compile(r"[0-9]{1,19}")


def whole_number(text: str, most: int = INT64_MAX) -> int | None:
    """`text` as an integer from 0 to `most` when it is only ASCII digits, else None."""
    if _DIGITS.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= most else None
