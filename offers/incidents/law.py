"""Legal entitlements: what EU261, UK261, Canada's APPR and the US DOT refund rule already owe.

Entitlements depend on the incident's facts (route, delay, cause, carrier), never on the
customer, so the engine calls `entitlements_for` once per incident update and shows the result
beside every customer's perk. Thresholds, amounts and citations are data
(`defaults/entitlements.toml`); switching to a new version of a regime is a data change.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from offers.incidents.airports import Airport, airport, great_circle_km
from offers.incidents.regimes import (
    Band,
    Cause,
    Country,
    DelayTiers,
    DistanceBands,
    Minutes,
    Notice,
    RefundThreshold,
    Regime,
    Regimes,
    Scope,
    load_regimes,
)

__all__ = [
    "Entitlement",
    "FlightContext",
    "band_for",
    "entitlements_for",
]

Iata = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{3}(?!\n)$")]


class Entitlement(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One thing the law owes; `basis` cites the article and the facts that trigger it."""

    regime: str
    kind: str
    amount: float | None = None
    currency: str | None = None
    basis: str


class FlightContext(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The incident facts entitlements depend on.

    For a cancellation, `arrival_delay_minutes` is the lateness of the re-routing offered,
    `reroute_departs_early_minutes` how long before the scheduled departure it leaves (None: no
    re-routing offered, or not known) and `notice_days` how many whole days ahead the passenger
    was told (0: on the day, the passenger-favourable assumption).
    `cause` defaults to "controllable": the carrier must prove extraordinary circumstances.
    `carrier_size` defaults to "large", the passenger-favourable APPR assumption.
    """

    origin: Iata
    destination: Iata
    departure_delay_minutes: int
    arrival_delay_minutes: int
    carrier_country: Country
    cancelled: bool = False
    cause: Cause = "controllable"
    carrier_size: Literal["large", "small"] = "large"
    overnight: bool = False
    notice_days: Minutes = 0
    reroute_departs_early_minutes: Minutes | None = None


def band_for(regime: DistanceBands, km: float, *, domestic: bool = False) -> Band:
    """The distance band of a flight; a domestic flight is capped at `domestic_max_band`."""
    band = next(b for b in regime.band if b.max_km is None or km <= b.max_km)
    if domestic:
        names = [b.name for b in regime.band]
        cap = names.index(regime.domestic_max_band)
        band = regime.band[min(names.index(band.name), cap)]
    return band


def _hm(minutes: int) -> str:
    return f"{minutes // 60} h {minutes % 60:02d}"


def _late(what: str, minutes: int) -> str:
    return f"{what} {_hm(minutes)} late" if minutes > 0 else f"{what} on time"


def _scope(
    regime: Regime, rules: Regimes, origin: Airport, dest: Airport, carrier: str
) -> Scope | None:
    """The scope rule that brings this flight under `regime`, or None when it does not apply."""
    members = rules.jurisdictions
    for s in regime.scope:
        if s.departs_in and origin.country not in members[s.departs_in]:
            continue
        if s.arrives_in and dest.country not in members[s.arrives_in]:
            continue
        if s.carrier_in is not None and not any(carrier in members[j] for j in s.carrier_in):
            continue
        return s
    return None


def entitlements_for(ctx: FlightContext, rules: Regimes | None = None) -> list[Entitlement]:
    """Everything owed under every in-force regime that covers the flight, care apart from cash.

    A flight may fall under several regimes; each is listed, and cash that the law does not let
    a passenger collect twice says so in its `basis`.
    """
    rules = rules or load_regimes()
    ends = {}
    for field, code in (("origin", ctx.origin), ("destination", ctx.destination)):
        found = airport(code)
        if found is None:
            raise ValueError(f"{field}: unknown airport code {code!r}")
        ends[field] = found
    origin, dest = ends["origin"], ends["destination"]
    km = great_circle_km(origin.lat, origin.lon, dest.lat, dest.lon)
    out: list[Entitlement] = []
    for regime in rules.in_force():
        scope = _scope(regime, rules, origin, dest, ctx.carrier_country)
        if scope is None:
            continue
        members = rules.jurisdictions[regime.jurisdiction]
        domestic = origin.country in members and dest.country in members
        if isinstance(regime, DistanceBands):
            out += _distance_bands(regime, ctx, km, domestic, scope)
        elif isinstance(regime, DelayTiers):
            out += _delay_tiers(regime, ctx, scope)
        else:
            out += _refund_threshold(regime, ctx, domestic, scope)
    return _mark_non_cumulative(out, rules)


def _distance_bands(
    r: DistanceBands, ctx: FlightContext, km: float, domestic: bool, scope: Scope
) -> list[Entitlement]:
    band = band_for(r, km, domestic=domestic)
    facts = f"{km:,.0f} km ({band.name} band), "
    late = _late("arrival", ctx.arrival_delay_minutes)
    out: list[Entitlement] = []

    def add(kind: str, article: str, why: str, amount: float | None = None) -> None:
        money = r.currency if amount is not None else None
        basis = f"{r.id} {article} (scope {scope.article}): {why}"
        out.append(Entitlement(regime=r.id, kind=kind, amount=amount, currency=money, basis=basis))

    threshold = band.cash_min_arrival_delay_minutes
    if threshold is None:
        threshold = r.cash_min_arrival_delay_minutes
    exempt = _notice_exemption(r.notice, ctx)
    if ctx.cancelled:
        owed, why = exempt is None, facts + "cancelled, re-routing " + late
    else:
        owed, why = ctx.arrival_delay_minutes >= threshold, facts + late
    if owed and ctx.cause not in r.cash_excluded_causes:
        amount = band.cash_amount
        cap = band.halved_if_arrival_delay_at_most_minutes
        halvable = ctx.cancelled or band.halving_applies_to_delays
        if halvable and cap is not None and ctx.arrival_delay_minutes <= cap:
            amount, why = amount / 2, why + f"; halved under {band.halving_article}"
        if scope.condition:
            why += f"; {scope.condition}"
        add("cash", band.cash_article, why, amount)

    care_due = ctx.cancelled or ctx.departure_delay_minutes >= band.care_min_departure_delay_minutes
    if care_due and ctx.cause not in r.care_excluded_causes:
        dep = "cancelled" if ctx.cancelled else _late("departure", ctx.departure_delay_minutes)
        meal = r.meal_on_cancellation_article if ctx.cancelled else r.meal_article
        add("care.meal", meal, f"{facts}{dep}; meals and refreshments")
        add("care.communication", r.communication_article, f"{dep}; two calls or messages")
        if ctx.overnight:
            hotel = r.hotel_on_cancellation_article if ctx.cancelled else r.hotel_article
            add("care.hotel", hotel, f"{dep}; departure the next day: hotel and transport")
    if ctx.cancelled:
        why = "cancelled; refund or re-routing" + _notice_note(exempt, ctx)
        add("refund", r.refund_on_cancellation_article, why)
    elif ctx.departure_delay_minutes >= r.refund_min_departure_delay_minutes:
        dep = _late("departure", ctx.departure_delay_minutes)
        add("refund", r.refund_article, f"{dep}; refund if not travelling")
    return out


def _notice_exemption(notices: list[Notice], ctx: FlightContext) -> Notice | None:
    """The notice rule that removes cash for this cancellation, if any.

    A re-routing condition is met only by a re-routing the facts describe: the carrier must
    show it offered one, so an unknown departure never exempts.
    """
    if not ctx.cancelled:
        return None
    for n in notices:
        if ctx.notice_days < n.min_days:
            continue
        early, late = (
            n.exempt_if_departs_at_most_minutes_early,
            n.exempt_if_arrival_delay_under_minutes,
        )
        if early is None and late is None:
            return n
        offered = ctx.reroute_departs_early_minutes
        if offered is None or (early is not None and offered > early):
            continue
        if late is None or ctx.arrival_delay_minutes < late:
            return n
    return None


def _notice_note(exempt: Notice | None, ctx: FlightContext) -> str:
    """Why a cancellation owes no cash although the passenger was let down."""
    if exempt is None:
        return ""
    told = f"told {ctx.notice_days} days ahead"
    return f"; no compensation: {told}, {exempt.article}"


def _delay_tiers(r: DelayTiers, ctx: FlightContext, scope: Scope) -> list[Entitlement]:
    out: list[Entitlement] = []
    head = f"{r.id} {{}} (scope {scope.article}, {ctx.carrier_size} carrier, cause {ctx.cause}): "

    def add(kind: str, article: str, why: str, amount: float | None = None) -> None:
        money = r.currency if amount is not None else None
        basis = head.format(article) + why
        out.append(Entitlement(regime=r.id, kind=kind, amount=amount, currency=money, basis=basis))

    tiers = [
        t
        for t in r.tier
        if t.carrier_size == ctx.carrier_size
        and ctx.arrival_delay_minutes >= t.min_arrival_delay_minutes
    ]
    exempt = _notice_exemption(r.notice, ctx)
    if tiers and ctx.cause in r.cash_causes and exempt is None:
        top = max(tiers, key=lambda t: t.min_arrival_delay_minutes)
        add("cash", top.article, _late("arrival", ctx.arrival_delay_minutes), top.amount)
    dep = "cancelled" if ctx.cancelled else _late("departure", ctx.departure_delay_minutes)
    care = ctx.cancelled or ctx.departure_delay_minutes >= r.care_min_departure_delay_minutes
    if care and ctx.cause in r.care_causes:
        add("care.meal", r.meal_article, f"{dep}; food and drink")
        add("care.communication", r.communication_article, f"{dep}; means of communication")
        if ctx.overnight:
            add("care.hotel", r.hotel_article, f"{dep}; overnight: hotel and transport")
    refund = ctx.cancelled or ctx.departure_delay_minutes >= r.refund_min_departure_delay_minutes
    if refund and ctx.cause in r.refund_causes:
        why = f"{dep}; refund if the alternative does not suit" + _notice_note(exempt, ctx)
        add("refund", r.refund_article, why)
    return out


def _refund_threshold(
    r: RefundThreshold, ctx: FlightContext, domestic: bool, scope: Scope
) -> list[Entitlement]:
    limit = (
        r.domestic_min_arrival_delay_minutes
        if domestic
        else r.international_min_arrival_delay_minutes
    )
    if not (ctx.cancelled or ctx.arrival_delay_minutes >= limit):
        return []
    what = "cancelled" if ctx.cancelled else _late("arrival", ctx.arrival_delay_minutes)
    kind = "domestic" if domestic else "international"
    basis = (
        f"{r.id} {r.refund_article} (scope {scope.article}): {kind} flight, {what} "
        f"(threshold {_hm(limit)}); automatic fare refund if the passenger declines the "
        "alternative or voucher (a refund, not compensation)"
    )
    return [Entitlement(regime=r.id, kind="refund", basis=basis)]


def _mark_non_cumulative(out: list[Entitlement], rules: Regimes) -> list[Entitlement]:
    """Where several regimes pay cash, say in each basis that they do not simply add up."""
    payers = sorted({e.regime for e in out if e.kind == "cash"})
    if len(payers) < 2:
        return out
    notes = {r.id: r.non_cumulative_note for r in rules.in_force()}
    marked = []
    for e in out:
        if e.kind == "cash" and notes.get(e.regime):
            others = ", ".join(p for p in payers if p != e.regime)
            note = f"; also cash under {others}: {notes[e.regime]}"
            e = msgspec.structs.replace(e, basis=e.basis + note)
        marked.append(e)
    return marked
