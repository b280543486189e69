"""The regimes' data: versioned thresholds, amounts and citations, decoded and checked.

Every regime (EU261, UK261, APPR, US DOT) is recorded in `defaults/entitlements.toml` as one
of three models; these types say what each model holds, and `load_regimes` refuses a file
whose jurisdictions, bands or in-force versions do not add up, before any flight is judged.
"""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import msgspec

__all__ = [
    "DEFAULTS",
    "Band",
    "Cause",
    "Citation",
    "Country",
    "DelayTiers",
    "DistanceBands",
    "Minutes",
    "Notice",
    "RefundThreshold",
    "Regime",
    "Regimes",
    "Scope",
    "Tier",
    "load_regimes",
]

DEFAULTS = Path(__file__).parent / "defaults"

Cause = Literal["controllable", "uncontrollable", "safety"]
Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}(?!\n)$")]
Minutes = Annotated[int, msgspec.Meta(ge=0)]


class Citation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    regulation: str
    article: str
    url: str


class Scope(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A regime covers a flight when every given condition holds (jurisdiction names)."""

    departs_in: str | None = None
    arrives_in: str | None = None
    carrier_in: list[str] | None = None
    article: str
    condition: str = ""


class Band(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    max_km: float | None = None
    cash_amount: float
    cash_article: str
    cash_min_arrival_delay_minutes: Minutes | None = None
    halved_if_arrival_delay_at_most_minutes: Minutes | None = None
    halving_article: str = ""
    halving_applies_to_delays: bool = False
    care_min_departure_delay_minutes: Minutes


class Notice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A cancellation announced `min_days` or more ahead owes no cash, when the re-routing
    offered (if a condition is given) leaves no more than `exempt_if_departs_at_most_minutes_early`
    before and arrives less than `exempt_if_arrival_delay_under_minutes` after schedule."""

    min_days: Annotated[int, msgspec.Meta(ge=0)]
    exempt_if_departs_at_most_minutes_early: Minutes | None = None
    exempt_if_arrival_delay_under_minutes: Minutes | None = None
    article: str


class Tier(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    carrier_size: Literal["large", "small"]
    min_arrival_delay_minutes: Minutes
    amount: float
    article: str


class _Regime(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    version: str
    status: Literal["in-force", "pending", "superseded"]
    effective_from: date | None = None
    effective_until: date | None = None
    title: str
    currency: str
    jurisdiction: str
    citation: list[Citation]
    scope: list[Scope]
    non_cumulative_note: str = ""


class DistanceBands(
    _Regime,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="model",
    tag="distance-bands",
):
    """EU261 and its UK copy: cash by great-circle band and arrival delay; care by band."""

    cash_min_arrival_delay_minutes: Minutes
    cash_excluded_causes: list[Cause]
    care_excluded_causes: list[Cause]
    refund_min_departure_delay_minutes: Minutes
    refund_article: str
    refund_on_cancellation_article: str
    meal_article: str
    meal_on_cancellation_article: str
    communication_article: str
    hotel_article: str
    hotel_on_cancellation_article: str
    domestic_max_band: str
    notice: list[Notice] = []
    band: list[Band]


class DelayTiers(
    _Regime,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="model",
    tag="delay-tiers",
):
    """APPR: cash by carrier size and arrival-delay tier, for causes in the carrier's control."""

    cash_causes: list[Cause]
    care_causes: list[Cause]
    care_min_departure_delay_minutes: Minutes
    meal_article: str
    communication_article: str
    hotel_article: str
    refund_causes: list[Cause]
    refund_min_departure_delay_minutes: Minutes
    refund_article: str
    notice: list[Notice] = []
    tier: list[Tier]


class RefundThreshold(
    _Regime,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="model",
    tag="refund-threshold",
):
    """US DOT: a fare refund (not compensation) past a domestic or international threshold."""

    domestic_min_arrival_delay_minutes: Minutes
    international_min_arrival_delay_minutes: Minutes
    refund_article: str


Regime = DistanceBands | DelayTiers | RefundThreshold


class Regimes(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every recorded version of every regime; only `in-force` versions are applied."""

    schema: Literal[1]
    jurisdictions: dict[str, list[Country]]
    regime: list[Regime]

    def in_force(self) -> list[Regime]:
        return [r for r in self.regime if r.status == "in-force"]


@functools.cache
def load_regimes(path: Path | None = None) -> Regimes:
    """Decode and check the regimes file (default: the bundled one); cached per path."""
    path = path or DEFAULTS / "entitlements.toml"
    regimes = msgspec.toml.decode(path.read_bytes(), type=Regimes)
    _check(regimes, path)
    return regimes


def _check(regimes: Regimes, path: Path) -> None:
    seen: set[str] = set()
    for r in regimes.regime:
        where = f"{path.name}: {r.id} {r.version}"
        if r.status == "in-force":
            if r.id in seen:
                raise ValueError(f"{where}: a second in-force version of {r.id}")
            seen.add(r.id)
        names = [r.jurisdiction] + [
            j for s in r.scope for j in [s.departs_in, s.arrives_in, *(s.carrier_in or [])] if j
        ]
        unknown = sorted(set(names) - regimes.jurisdictions.keys())
        if unknown:
            raise ValueError(f"{where}: unknown jurisdiction {', '.join(unknown)}")
        if isinstance(r, DistanceBands):
            closed = [b.max_km for b in r.band if b.max_km is not None]
            if not r.band or r.band[-1].max_km is not None or len(closed) != len(r.band) - 1:
                raise ValueError(f"{where}: only the last band is open-ended")
            if closed != sorted(closed):
                raise ValueError(f"{where}: bands out of order")
            if r.domestic_max_band not in {b.name for b in r.band}:
                raise ValueError(f"{where}: unknown band {r.domestic_max_band!r}")
