"""Legal entitlements on their band edges, with the bundled regimes and airports."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest

from offers.incidents.airports import EARTH_RADIUS_KM, airport, great_circle_km
from offers.incidents.law import Entitlement, FlightContext, band_for, entitlements_for
from offers.incidents.regimes import DEFAULTS, DistanceBands, load_regimes


def ctx(
    route: str, carrier: str = "DE", dep: int | None = None, arr: int = 0, **kw: Any
) -> FlightContext:
    """A flight `route` ("FRA-JFK") on a carrier of country `carrier`; departure delay = arrival."""
    origin, destination = route.split("-")
    return FlightContext(
        origin=origin,
        destination=destination,
        departure_delay_minutes=arr if dep is None else dep,
        arrival_delay_minutes=arr,
        carrier_country=carrier,
        **kw,
    )


def pick(ents: list[Entitlement], regime: str, kind: str) -> list[Entitlement]:
    return [e for e in ents if e.regime == regime and e.kind == kind]


def cash(flight: FlightContext, regime: str) -> float | None:
    found = pick(entitlements_for(flight), regime, "cash")
    assert len(found) <= 1
    return found[0].amount if found else None


def km(route: str) -> float:
    a, b = (airport(code) for code in route.split("-"))
    assert a is not None and b is not None
    return great_circle_km(a.lat, a.lon, b.lat, b.lon)


def distance_regime(regime_id: str, status: str = "in-force") -> DistanceBands:
    found = [
        r
        for r in load_regimes().regime
        if r.id == regime_id and r.status == status and isinstance(r, DistanceBands)
    ]
    assert len(found) == 1
    return found[0]


# --- data -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "country", "lat", "lon"),
    [
        ("TPE", "TW", 25.08, 121.23),
        ("HKG", "HK", 22.31, 113.92),
        ("LHR", "GB", 51.47, -0.46),
        ("JFK", "US", 40.64, -73.78),
        ("YYZ", "CA", 43.68, -79.63),
        ("CDG", "FR", 49.01, 2.55),
        ("FRA", "DE", 50.03, 8.54),
    ],
)
def test_bundled_airports_have_sensible_coordinates(
    code: str, country: str, lat: float, lon: float
) -> None:
    found = airport(code.lower())
    assert found is not None and found.iata == code and found.country == country
    assert found.lat == pytest.approx(lat, abs=0.05) and found.lon == pytest.approx(lon, abs=0.05)


def test_airports_csv_is_small_has_provenance_and_unique_iata_codes() -> None:
    path = DEFAULTS / "airports.csv"
    assert path.stat().st_size < 500_000
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#") and "MIT" in lines[0] and "airportsdata" in lines[0]
    rows = list(csv.DictReader(lines[1:]))
    codes = [r["iata"] for r in rows]
    assert len(codes) == len(set(codes)) > 5000
    assert all(len(c) == 3 and c.isupper() for c in codes)
    assert all(-90 <= float(r["lat"]) <= 90 and -180 <= float(r["lon"]) <= 180 for r in rows)


def test_unknown_code_is_none_not_an_error() -> None:
    assert airport("QQQ") is None


def test_regimes_data_is_versioned_and_cited() -> None:
    regimes = load_regimes()
    in_force = [r.id for r in regimes.in_force()]
    assert sorted(in_force) == ["APPR", "EU261", "UK261", "US-DOT"]
    reform = distance_regime("EU261", status="pending")
    assert reform.effective_from is None
    assert [b.cash_amount for b in reform.band] == [300.0, 500.0]
    for r in regimes.regime:
        assert r.citation and all(c.url.startswith("https://") for c in r.citation)


def test_a_second_in_force_version_is_refused(tmp_path: Path) -> None:
    text = (DEFAULTS / "entitlements.toml").read_text(encoding="utf-8")
    path = tmp_path / "entitlements.toml"
    path.write_text(text.replace('status = "pending"', 'status = "in-force"'), encoding="utf-8")
    with pytest.raises(ValueError, match="second in-force version of EU261"):
        load_regimes(path)


def test_switching_to_the_reform_is_data_not_code() -> None:
    regimes = load_regimes()
    swapped = msgspec.structs.replace(
        regimes,
        regime=[
            msgspec.structs.replace(
                r, status={"in-force": "superseded", "pending": "in-force"}[r.status]
            )
            if r.id == "EU261"
            else r
            for r in regimes.regime
        ],
    )
    # FRA-JFK, 6,188 km: 600 at 4 h today; the reform owes 500, and only from 6 h.
    late_4h = ctx("FRA-JFK", arr=240)
    assert cash(late_4h, "EU261") == 300.0
    assert pick(entitlements_for(late_4h, swapped), "EU261", "cash") == []
    late_6h = entitlements_for(ctx("FRA-JFK", arr=360), swapped)
    assert [e.amount for e in pick(late_6h, "EU261", "cash")] == [500.0]


# --- distance ---------------------------------------------------------------------------------


def test_great_circle_uses_the_iugg_mean_radius() -> None:
    assert great_circle_km(0, 0, 0, 0) == 0
    assert great_circle_km(0, 0, 0, 90) == pytest.approx(math.pi / 2 * EARTH_RADIUS_KM)
    assert great_circle_km(90, 0, -90, 0) == pytest.approx(math.pi * 6371.0088)


@pytest.mark.parametrize(
    ("route", "low", "high"),
    [
        ("MAD-MUC", 1490, 1500),  # just short haul
        ("BCN-BER", 1500, 1510),  # just past 1,500 km, intra-EU
        ("LPA-PRG", 3500, 3520),  # past 3,500 km, but intra-EU
        ("FRA-TLV", 2900, 3000),
        ("FRA-JFK", 6150, 6250),
        ("LHR-CDG", 340, 355),
        ("TPE-LHR", 9700, 9850),
        ("YYZ-YVR", 3300, 3400),
        ("JFK-LAX", 3950, 4000),
    ],
)
def test_real_pairs_distances(route: str, low: float, high: float) -> None:
    assert low < km(route) < high


@pytest.mark.parametrize(
    ("regime", "status", "distance", "domestic", "band"),
    [
        ("EU261", "in-force", 1500.0, False, "short"),
        ("EU261", "in-force", 1501.0, False, "medium"),
        ("EU261", "in-force", 1501.0, True, "medium"),
        ("EU261", "in-force", 3500.0, False, "medium"),
        ("EU261", "in-force", 3501.0, False, "long"),
        ("EU261", "in-force", 9369.0, True, "medium"),  # Paris-Reunion is intra-Community
        ("UK261", "in-force", 1500.0, False, "short"),
        ("UK261", "in-force", 1501.0, False, "medium"),
        ("UK261", "in-force", 3501.0, False, "long"),
        ("EU261", "pending", 3500.0, False, "short"),
        ("EU261", "pending", 3501.0, False, "long"),
        ("EU261", "pending", 3501.0, True, "short"),
    ],
)
def test_band_edges(regime: str, status: str, distance: float, domestic: bool, band: str) -> None:
    assert band_for(distance_regime(regime, status), distance, domestic=domestic).name == band


# --- EU261 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "arr", "amount"),
    [
        ("MAD-MUC", 179, None),
        ("MAD-MUC", 180, 250.0),
        ("BCN-BER", 180, 400.0),  # 1,502 km: intra-EU over 1,500
        ("FRA-TLV", 180, 400.0),  # a 3 h 00 medium-haul delay is not halved (see the TOML)
        ("LPA-PRG", 180, 400.0),  # intra-EU over 3,500 stays at 400
        ("FRA-JFK", 179, None),
        ("FRA-JFK", 180, 300.0),  # long-haul 3-4 h: halved, Art. 7(2)(c)
        ("FRA-JFK", 240, 300.0),
        ("FRA-JFK", 241, 600.0),
        ("CDG-RUN", 300, 400.0),  # Paris-Reunion, 9,369 km but intra-Community
    ],
)
def test_eu261_cash_by_band_and_arrival_delay(route: str, arr: int, amount: float | None) -> None:
    assert cash(ctx(route, arr=arr), "EU261") == amount


def test_eu261_basis_cites_article_and_facts() -> None:
    [e] = pick(entitlements_for(ctx("BCN-BER", arr=185)), "EU261", "cash")
    assert e.currency == "EUR"
    assert e.basis.startswith("EU261 Art. 7(1)(b) (scope Art. 3(1)(a)): 1,502 km")
    assert "arrival 3 h 05 late" in e.basis


@pytest.mark.parametrize(
    ("route", "dep", "meal"),
    [
        ("MAD-MUC", 119, False),
        ("MAD-MUC", 120, True),
        ("FRA-TLV", 179, False),
        ("FRA-TLV", 180, True),
        ("BCN-BER", 179, False),  # intra-EU over 1,500 km: the 3 h band
        ("FRA-JFK", 239, False),
        ("FRA-JFK", 240, True),
    ],
)
def test_eu261_right_to_care_by_departure_delay(route: str, dep: int, meal: bool) -> None:
    ents = entitlements_for(ctx(route, dep=dep, arr=0))
    assert bool(pick(ents, "EU261", "care.meal")) is meal
    assert bool(pick(ents, "EU261", "care.communication")) is meal
    assert pick(ents, "EU261", "cash") == []


@pytest.mark.parametrize(("overnight", "hotel"), [(False, False), (True, True)])
def test_eu261_hotel_only_when_departure_moves_to_the_next_day(
    overnight: bool, hotel: bool
) -> None:
    ents = entitlements_for(ctx("MAD-MUC", arr=200, overnight=overnight))
    assert bool(pick(ents, "EU261", "care.hotel")) is hotel


@pytest.mark.parametrize(("dep", "refund"), [(299, False), (300, True)])
def test_eu261_refund_from_five_hours(dep: int, refund: bool) -> None:
    assert bool(pick(entitlements_for(ctx("MAD-MUC", dep=dep)), "EU261", "refund")) is refund


@pytest.mark.parametrize("regime", ["EU261", "UK261"])
def test_extraordinary_circumstances_remove_cash_but_never_care(regime: str) -> None:
    route = "FRA-JFK" if regime == "EU261" else "LHR-JFK"
    carrier = "DE" if regime == "EU261" else "GB"
    flight = ctx(route, carrier, arr=600, overnight=True)
    assert cash(flight, regime) is not None
    ents = entitlements_for(msgspec.structs.replace(flight, cause="uncontrollable"))
    kinds = {e.kind for e in ents if e.regime == regime}
    assert kinds == {"care.meal", "care.communication", "care.hotel", "refund"}


@pytest.mark.parametrize(
    ("route", "notice", "arr", "amount"),
    [
        ("MAD-MUC", 14, 600, None),  # told two weeks ahead
        ("MAD-MUC", 7, 239, None),  # 7-14 days, re-routed arriving < 4 h late
        ("MAD-MUC", 7, 240, 250.0),
        ("MAD-MUC", 0, 119, None),  # under 7 days, re-routed arriving < 2 h late
        ("MAD-MUC", 0, 120, 125.0),  # ... within 2 h: halved, Art. 7(2)(a)
        ("MAD-MUC", 0, 121, 250.0),
        ("FRA-TLV", 0, 180, 200.0),  # re-routed within 3 h on medium haul: Art. 7(2)(b)
        ("FRA-TLV", 0, 181, 400.0),
        ("FRA-JFK", 0, 240, 300.0),
        ("FRA-JFK", 0, 241, 600.0),
    ],
)
def test_eu261_cancellation(route: str, notice: int, arr: int, amount: float | None) -> None:
    flight = ctx(
        route, dep=0, arr=arr, cancelled=True, notice_days=notice, reroute_departs_early_minutes=0
    )
    assert cash(flight, "EU261") == amount
    ents = entitlements_for(flight)
    assert pick(ents, "EU261", "refund") and pick(ents, "EU261", "care.meal")


# Art. 5(1)(c) on its edges: (notice days, re-routing departs minutes early, arrives minutes
# late) -> cash owed. MAD-MUC is short haul (250 EUR, halved when re-routed within 2 h).
@pytest.mark.parametrize(
    ("notice", "early", "arr", "amount"),
    [
        (14, None, 600, None),  # (i) two weeks: nothing, whatever the re-routing
        (13, None, 600, 250.0),  # 13 days and no re-routing offered
        (13, 120, 239, None),  # (ii) leaves 2 h early, arrives 3 h 59 late
        (13, 121, 239, 250.0),  # one minute too early
        (13, 120, 240, 250.0),  # arrives 4 h late: not "less than 4 h"
        (7, 120, 239, None),
        (6, 120, 239, 250.0),  # under 7 days the tighter (iii) limits apply
        (6, 60, 119, None),  # (iii) leaves 1 h early, arrives 1 h 59 late
        (6, 61, 119, 125.0),  # one minute too early: owed, halved (Art. 7(2)(a))
        (6, 60, 120, 125.0),  # arrives 2 h late: not "less than 2 h"
        (0, 60, 119, None),
        (6, None, 0, 125.0),  # re-routing not known: the carrier has not shown it offered one
    ],
)
@pytest.mark.parametrize(("regime", "carrier"), [("EU261", "DE"), ("UK261", "GB")])
def test_cancellation_notice_bands(
    regime: str, carrier: str, notice: int, early: int | None, arr: int, amount: float | None
) -> None:
    route = "MAD-MUC" if regime == "EU261" else "LHR-EDI"
    flight = ctx(
        route,
        carrier,
        dep=0,
        arr=arr,
        cancelled=True,
        notice_days=notice,
        reroute_departs_early_minutes=early,
    )
    scale = 1.0 if regime == "EU261" else 220.0 / 250.0
    assert cash(flight, regime) == (None if amount is None else amount * scale)
    ents = entitlements_for(flight)
    # notice never removes care, nor the refund or re-routing
    assert pick(ents, regime, "care.meal") and pick(ents, regime, "care.communication")
    [refund] = pick(ents, regime, "refund")
    assert ("no compensation" in refund.basis) is (amount is None)


def test_a_notice_exemption_cites_its_article() -> None:
    flight = ctx("MAD-MUC", dep=0, arr=200, cancelled=True, notice_days=9)
    exempt = entitlements_for(msgspec.structs.replace(flight, reroute_departs_early_minutes=90))
    [refund] = pick(exempt, "EU261", "refund")
    assert "told 9 days ahead, Art. 5(1)(c)(ii)" in refund.basis


@pytest.mark.parametrize(
    ("route", "carrier", "covered"),
    [
        ("FRA-JFK", "US", True),  # departures from the EU: any carrier
        ("JFK-FRA", "DE", True),  # arrivals in the EU on an EU carrier
        ("JFK-FRA", "US", False),
        ("JFK-ZRH", "CH", True),  # Switzerland counts
        ("LHR-CDG", "GB", False),  # UK carrier into the EU: UK261, not EU261
        ("TPE-HKG", "DE", False),
    ],
)
def test_eu261_scope(route: str, carrier: str, covered: bool) -> None:
    assert (cash(ctx(route, carrier, arr=300), "EU261") is not None) is covered


# --- UK261 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "carrier", "arr", "amount"),
    [
        ("LHR-CDG", "FR", 179, None),
        ("LHR-CDG", "FR", 180, 220.0),
        ("LHR-BUD", "HU", 180, 220.0),  # 1,489 km
        ("LHR-ATH", "GR", 180, 350.0),
        ("LHR-TPE", "TW", 239, 260.0),  # departures from the UK: any carrier
        ("LHR-TPE", "TW", 241, 520.0),
        # TPE-LHR (9,784 km, long haul) on a Taiwanese carrier: UK261 Art. 3(1)(b)(i) covers
        # arrivals in the UK only on UK or EU carriers, so nothing is owed under UK261.
        ("TPE-LHR", "TW", 300, None),
        ("TPE-LHR", "GB", 300, 520.0),
        ("TPE-LHR", "NL", 300, 520.0),
        ("JFK-CDG", "GB", 300, 520.0),  # Art. 3(1)(b)(ii): UK carrier into the EU
    ],
)
def test_uk261(route: str, carrier: str, arr: int, amount: float | None) -> None:
    assert cash(ctx(route, carrier, arr=arr), "UK261") == amount


def test_tpe_lhr_on_a_taiwanese_carrier_owes_nothing_anywhere() -> None:
    assert entitlements_for(ctx("TPE-LHR", "TW", arr=600, overnight=True)) == []


def test_uk261_amounts_are_pounds() -> None:
    [e] = pick(entitlements_for(ctx("LHR-CDG", "FR", arr=200)), "UK261", "cash")
    assert e.currency == "GBP" and "Art. 7(1)(a)" in e.basis


# --- APPR -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "arr", "amount"),
    [
        ("large", 179, None),
        ("large", 180, 400.0),
        ("large", 359, 400.0),
        ("large", 360, 700.0),
        ("large", 539, 700.0),
        ("large", 540, 1000.0),
        ("small", 179, None),
        ("small", 180, 125.0),
        ("small", 360, 250.0),
        ("small", 540, 500.0),
    ],
)
def test_appr_cash_by_carrier_size_and_delay(size: str, arr: int, amount: float | None) -> None:
    assert cash(ctx("YYZ-YVR", "CA", arr=arr, carrier_size=size), "APPR") == amount


@pytest.mark.parametrize(
    ("cause", "has_cash", "has_care"),
    [
        ("controllable", True, True),
        ("safety", False, True),
        ("uncontrollable", False, False),
    ],
)
def test_appr_cause(cause: str, has_cash: bool, has_care: bool) -> None:
    ents = entitlements_for(ctx("YYZ-YVR", "CA", arr=400, cause=cause, overnight=True))
    assert bool(pick(ents, "APPR", "cash")) is has_cash
    assert bool(pick(ents, "APPR", "care.meal")) is has_care
    assert bool(pick(ents, "APPR", "care.hotel")) is has_care


@pytest.mark.parametrize(
    ("notice", "amount"), [(0, 400.0), (13, 400.0), (14, 400.0), (15, None), (30, None)]
)
def test_appr_cancellation_compensated_only_when_told_14_days_or_less_ahead(
    notice: int, amount: float | None
) -> None:
    """s. 19(1): informed 14 days or less before departure; care and refund stay either way."""
    flight = ctx("YYZ-YVR", "CA", dep=0, arr=200, cancelled=True, notice_days=notice)
    assert cash(flight, "APPR") == amount
    ents = entitlements_for(msgspec.structs.replace(flight, overnight=True))
    assert {e.kind for e in ents if e.regime == "APPR"} >= {"care.meal", "care.hotel", "refund"}


@pytest.mark.parametrize(("dep", "meal"), [(119, False), (120, True)])
def test_appr_care_from_two_hours(dep: int, meal: bool) -> None:
    ents = entitlements_for(ctx("YYZ-YVR", "CA", dep=dep, arr=dep))
    assert bool(pick(ents, "APPR", "care.meal")) is meal


@pytest.mark.parametrize(
    ("route", "carrier", "covered"),
    [("YYZ-YVR", "CA", True), ("FRA-YYZ", "DE", True), ("YYZ-TPE", "TW", True)],
)
def test_appr_covers_flights_to_from_and_within_canada(
    route: str, carrier: str, covered: bool
) -> None:
    assert (cash(ctx(route, carrier, arr=200), "APPR") is not None) is covered


def test_eu261_and_appr_cash_say_they_do_not_simply_add_up() -> None:
    ents = entitlements_for(ctx("FRA-YYZ", "DE", arr=300))
    [eu] = pick(ents, "EU261", "cash")
    [appr] = pick(ents, "APPR", "cash")
    assert (eu.amount, appr.amount) == (600.0, 400.0)
    assert "also cash under APPR" in eu.basis and "Art. 12(1)" in eu.basis
    assert "also cash under EU261" in appr.basis


# --- US DOT -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "carrier", "arr", "cancelled", "refund"),
    [
        ("JFK-LAX", "US", 179, False, False),
        ("JFK-LAX", "US", 180, False, True),
        ("JFK-SJU", "US", 180, False, True),  # Puerto Rico is domestic
        ("JFK-LHR", "US", 359, False, False),
        ("JFK-LHR", "US", 360, False, True),
        ("YYZ-JFK", "CA", 359, False, False),
        ("YYZ-JFK", "CA", 360, False, True),
        ("JFK-LAX", "US", 0, True, True),
    ],
)
def test_us_dot_refund(route: str, carrier: str, arr: int, cancelled: bool, refund: bool) -> None:
    ents = entitlements_for(ctx(route, carrier, arr=arr, cancelled=cancelled))
    us = [e for e in ents if e.regime == "US-DOT"]
    assert [e.kind for e in us] == (["refund"] if refund else [])
    assert all(e.amount is None and "not compensation" in e.basis for e in us)


# --- outside every regime, and bad input ------------------------------------------------------


def test_no_regime_outside_all_jurisdictions() -> None:
    assert entitlements_for(ctx("TPE-HKG", "TW", arr=900, overnight=True, cancelled=True)) == []


@pytest.mark.parametrize(
    ("route", "field", "code"), [("QQQ-LHR", "origin", "QQQ"), ("LHR-QQQ", "destination", "QQQ")]
)
def test_unknown_airport_names_the_field_and_code(route: str, field: str, code: str) -> None:
    with pytest.raises(ValueError, match=f"{field}: unknown airport code '{code}'"):
        entitlements_for(ctx(route, arr=200))


def test_uk_to_eu_on_an_eu_carrier_lists_both_regimes_with_the_overlap_explained() -> None:
    ents = entitlements_for(ctx("LHR-CDG", "FR", arr=200))
    [uk] = pick(ents, "UK261", "cash")
    [eu] = pick(ents, "EU261", "cash")
    assert (uk.amount, uk.currency, eu.amount, eu.currency) == (220.0, "GBP", 250.0, "EUR")
    assert "scope Art. 3(1)(b)" in eu.basis and "received in the third country" in eu.basis
    assert "claims under one, not both" in uk.basis
