"""Honest intervals for off-policy estimates of a rate, however little the logs support.

A normal approximation collapses where the logs matched a draft a few times and saw no
redemption: the standard error of seventeen zeros is zero, and "0.0 [0.0, 0.0]" claims a
certainty nobody has. A Wilson score interval on the *effective* sample size of the
importance weights, `(sum w)^2 / sum w^2` (Kish), does not: seventeen equal weights and no
redemption give [0, 0.18]. Each interval here is the wider of the two on each side,
clipped to what the quantity can be ([0, 1] for acceptance, [0, the dearest perk] for cost
per decision, which is a rate times a cost); estimates are clipped the same way, so an
acceptance is never below 0. Below `MIN_EFFECTIVE` the report says "too little data".
"""

from __future__ import annotations

import math

__all__ = ["MIN_EFFECTIVE", "Z95", "bounded", "difference", "effective_size", "wilson"]

Z95 = 1.959964

#: Below this effective sample size a group's estimates are marked "too little data".
MIN_EFFECTIVE = 30.0


def effective_size(sum_w: float, sum_w2: float) -> float:
    """Kish's effective sample size of importance weights (0 without any match)."""
    return 0.0 if sum_w2 <= 0 else sum_w * sum_w / sum_w2


def wilson(p: float, n: float, z: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion `p` seen in `n` (possibly fractional)
    trials; [0, 1] without any."""
    if n <= 0:
        return 0.0, 1.0
    p = min(max(p, 0.0), 1.0)
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(centre - half, 0.0), min(centre + half, 1.0)


def bounded(
    value: float | None,
    low: float | None,
    high: float | None,
    effective: float,
    z: float,
    top: float = 1.0,
) -> tuple[float, float, float] | None:
    """(value, low, high) of a quantity in [0, `top`]: the value clipped, the interval the
    wider of the normal one (`low`, `high`) and Wilson's on `effective` trials."""
    if value is None or top <= 0:
        return None if value is None else (0.0, 0.0, 0.0)
    v = min(max(value, 0.0), top)
    w_low, w_high = wilson(v / top, effective, z)
    lo = min(w_low * top, low if low is not None and not math.isnan(low) else top)
    hi = max(w_high * top, high if high is not None and not math.isnan(high) else 0.0)
    return v, min(max(lo, 0.0), v), max(min(hi, top), v)


def difference(
    x1: float, n1: float, x2: float, n2: float, z: float = Z95
) -> tuple[float, float, float] | None:
    """p1 - p2 of two proportions (`x` of `n` each) with Newcombe's hybrid score interval
    (his method 10: built from each side's Wilson interval, so it stays honest with a
    handful of customers and never claims more than [-1, 1]); None if either side is empty."""
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(p1, n1, z)
    l2, u2 = wilson(p2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, max(low, -1.0), min(high, 1.0)
