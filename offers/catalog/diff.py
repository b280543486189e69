"""What changed between two offer tables, rule by rule and field by field.

Marketing reviews a change before publishing it; a list of small, located changes (rule
`biz-lounge`, field `perk`: `lounge-1h` -> `meal-12`) reads better than a text diff, and
rule order is reported too because under the `first` policy order decides who gets what.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from offers.catalog.cases import Case, Expect
from offers.catalog.fields import Range
from offers.catalog.tables import OfferTable, Perk, Rule

__all__ = ["Change", "diff_tables"]

What = Literal["table", "rule", "perk", "case"]


class Change(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One difference: a rule or perk added/removed/moved, or one field changed."""

    change: Literal["added", "removed", "changed", "moved"]
    what: What
    id: str
    field: str | None = None
    before: str | None = None
    after: str | None = None

    def __str__(self) -> str:
        where = f"{self.what} {self.id}" + (f", field {self.field}" if self.field else "")
        if self.change == "changed" or self.change == "moved":
            return f"{self.change}: {where}: {self.before} -> {self.after}"
        return f"{self.change}: {where}"


def _show(value: Any) -> str | None:
    """A value as it is written in TOML, so the diff reads like the file."""
    if value is None:
        return None
    if isinstance(value, Range):
        bounds = {k: v for k, v in (("min", value.min), ("max", value.max)) if v is not None}
        return _show(bounds)
    if isinstance(value, str):
        return value
    return msgspec.json.encode(msgspec.to_builtins(value)).decode()


def _fields(item: Rule | Perk | Case) -> dict[str, Any]:
    """Flatten `when` and `title` (a case's facts, profile and expectation) one level so
    each condition or title is its own field."""
    out: dict[str, Any] = {}
    for name in item.__struct_fields__:
        value = getattr(item, name)
        if isinstance(value, Expect):
            value = {k: v for k, v in msgspec.structs.asdict(value).items() if v is not None}
        if name in ("when", "title", "facts", "profile", "expect") and isinstance(value, dict):
            out.update({f"{name}.{k}": v for k, v in value.items()})
        else:
            out[name] = value
    return out


def _compare(what: What, before: Rule | Perk | Case, after: Rule | Perk | Case) -> list[Change]:
    old, new = _fields(before), _fields(after)
    keys = list(old) + [k for k in new if k not in old]
    return [
        Change(
            change="changed",
            what=what,
            id=after.id,
            field=k,
            before=_show(old.get(k)),
            after=_show(new.get(k)),
        )
        for k in keys
        if old.get(k) != new.get(k)
    ]


def _items(what: What, old: list[Any], new: list[Any]) -> list[Change]:
    before = {x.id: x for x in old}
    after = {x.id: x for x in new}
    out = [Change(change="removed", what=what, id=i) for i in before if i not in after]
    out += [Change(change="added", what=what, id=i) for i in after if i not in before]
    kept_old = [i for i in before if i in after]
    kept_new = [i for i in after if i in before]
    for i in kept_new:
        out += _compare(what, before[i], after[i])
    if what == "rule":
        stay = _common_order(kept_old, kept_new)
        position_old = {r.id: n for n, r in enumerate(old, start=1)}
        position_new = {r.id: n for n, r in enumerate(new, start=1)}
        out += [
            Change(
                change="moved",
                what=what,
                id=i,
                before=f"#{position_old[i]}",
                after=f"#{position_new[i]}",
            )
            for i in kept_new
            if i not in stay
        ]
    return out


def _common_order(a: list[str], b: list[str]) -> set[str]:
    """Ids in a longest common subsequence: the rules that kept their relative order."""
    n, m = len(a), len(b)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = (
                best[i + 1][j + 1] + 1 if a[i] == b[j] else max(best[i + 1][j], best[i][j + 1])
            )
    out: set[str] = set()
    i = j = 0
    while i < n and j < m:
        if a[i] == b[j]:
            out.add(a[i])
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def diff_tables(before: OfferTable, after: OfferTable) -> list[Change]:
    """Every change from `before` to `after`: table settings, rules, perks, example cases."""
    out = [
        Change(
            change="changed",
            what="table",
            id=after.name,
            field=f,
            before=getattr(before, f),
            after=getattr(after, f),
        )
        for f in ("name", "hit_policy")
        if getattr(before, f) != getattr(after, f)
    ]
    return (
        out
        + _items("rule", before.rules, after.rules)
        + _items("perk", before.perks, after.perks)
        + _items("case", before.cases, after.cases)
    )
