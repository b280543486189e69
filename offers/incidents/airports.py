"""Airports and the distance between them, for the law's distance bands.

EU261 and UK261 pay by great-circle distance, so entitlements need each airport's country and
coordinates. The bundled list (`defaults/airports.csv`) is small and read once.
"""

from __future__ import annotations

import csv
import functools
import math
from pathlib import Path

import msgspec

__all__ = [
    "DEFAULTS",
    "EARTH_RADIUS_KM",
    "Airport",
    "airport",
    "great_circle_km",
]

DEFAULTS = Path(__file__).parent / "defaults"

# IUGG mean Earth radius (R1). Reg. 261/2004 Art. 7(4) says "great circle route" without a
# radius; the choice moves a 1,500 km distance by well under a kilometre.
EARTH_RADIUS_KM = 6371.0088


class Airport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    iata: str
    name: str
    country: str
    lat: float
    lon: float


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance on a sphere of radius EARTH_RADIUS_KM (Art. 7(4) great-circle route)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@functools.cache
def _airports() -> dict[str, Airport]:
    with (DEFAULTS / "airports.csv").open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return {
            r["iata"]: Airport(
                iata=r["iata"],
                name=r["name"],
                country=r["country"],
                lat=float(r["lat"]),
                lon=float(r["lon"]),
            )
            for r in rows
        }


def airport(code: str) -> Airport | None:
    """The bundled airport with this IATA code (any case), or None."""
    return _airports().get(code.strip().upper())
