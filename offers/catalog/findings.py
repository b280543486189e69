"""A finding: one problem with a table, how bad it is and exactly where it sits."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["Finding", "Severity"]

Severity = Literal["error", "warning"]


class Finding(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One problem: how bad, what kind (`code`), and where (table, rule or perk, field)."""

    severity: Severity
    code: str
    table: str
    rule: str | None = None
    perk: str | None = None
    field: str | None = None
    message: str

    def __str__(self) -> str:
        where = [f"table {self.table}"]
        if self.rule is not None:
            where.append(f"rule {self.rule}")
        if self.perk is not None:
            where.append(f"perk {self.perk}")
        if self.field is not None:
            where.append(f"field {self.field}")
        return f"{self.severity}: {', '.join(where)}: {self.message}"
