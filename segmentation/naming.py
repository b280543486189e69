"""Human names for clusters, from what sets each one apart.

A cluster's centroid in standardized feature space is a vector of z-scores against the
population. It is matched (optimal assignment) to named archetypes by cosine similarity, so
the same kind of customer gets the same name every time a model is trained; clusters that
fit no archetype get a name built from their strongest features.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["ARCHETYPES", "MIN_SIMILARITY", "PHRASES", "describe", "name_clusters"]

#: name -> signature over profile columns: positive where the kind is above average.
ARCHETYPES: dict[str, dict[str, float]] = {
    "road-warrior": {"trips_12m": 2, "business_share": 1.5, "lounge_visits_12m": 1, "spend_12m": 1},
    "premium-business": {
        "avg_fare": 2,
        "lounge_visits_12m": 1.5,
        "business_share": 1,
        "spend_12m": 1.5,
    },
    "leisure-family": {
        "business_share": -1,
        "avg_fare": -1,
        "lounge_visits_12m": -0.5,
        "tenure_years": 0.5,
    },
    "duty-free-shopper": {"duty_free_spend_12m": 2, "business_share": -0.5},
    "occasional-flyer": {
        "trips_12m": -1.5,
        "spend_12m": -1,
        "tenure_years": -1,
        "duty_free_spend_12m": -1,
    },
}

#: column -> (phrase when high, phrase when low)
PHRASES: dict[str, tuple[str, str]] = {
    "trips_12m": ("frequent travellers", "rare travellers"),
    "spend_12m": ("high spenders", "low spenders"),
    "business_share": ("mostly business trips", "mostly leisure trips"),
    "avg_fare": ("high fares", "low fares"),
    "duty_free_spend_12m": ("heavy duty-free shoppers", "little duty-free spend"),
    "lounge_visits_12m": ("regular lounge users", "no lounge use"),
    "tenure_years": ("long-standing customers", "new customers"),
    "complaints_12m": ("frequent complainers", "rarely complain"),
}

MIN_SIMILARITY = 0.5


def describe(z: np.ndarray, columns: list[str], top: int = 3) -> str:
    """The strongest deviations from the population, in words."""
    order = np.argsort(-np.abs(z))[:top]
    parts = []
    for i in order:
        if abs(z[i]) < 0.25:
            continue
        high, low = PHRASES.get(columns[i], (f"high {columns[i]}", f"low {columns[i]}"))
        parts.append(high if z[i] > 0 else low)
    return ", ".join(parts) or "close to the average customer"


def _descriptive_name(z: np.ndarray, columns: list[str]) -> str:
    i = int(np.argmax(np.abs(z)))
    stem = re.sub(r"[^a-z0-9]+", "-", columns[i].lower().replace("_12m", "")).strip("-")
    return f"{'high' if z[i] > 0 else 'low'}-{stem}"


def _archetypes(centroids_z: np.ndarray, columns: list[str], names: list[str]) -> dict[int, str]:
    """Cluster -> archetype name, by optimal assignment on cosine similarity."""
    if not names or len(centroids_z) == 0:
        return {}
    signatures = np.array(
        [[ARCHETYPES[n].get(c, 0.0) for c in columns] for n in names], dtype=float
    )
    sig = signatures / np.maximum(np.linalg.norm(signatures, axis=1, keepdims=True), 1e-9)
    cen = centroids_z / np.maximum(np.linalg.norm(centroids_z, axis=1, keepdims=True), 1e-9)
    similarity = cen @ sig.T
    from scipy.optimize import linear_sum_assignment  # slow import: only here

    rows, cols = linear_sum_assignment(-similarity)
    return {
        int(r): names[c]
        for r, c in zip(rows, cols, strict=True)
        if similarity[r, c] >= MIN_SIMILARITY
    }


def name_clusters(
    centroids_z: np.ndarray, columns: list[str], taken: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """(name, description) for each cluster; names are unique and never in `taken`."""
    chosen = _archetypes(centroids_z, columns, [n for n in ARCHETYPES if n not in taken])
    result: list[tuple[str, str]] = []
    used: set[str] = set(chosen.values()) | set(taken)
    for k, z in enumerate(centroids_z):
        if k in chosen:
            result.append((chosen[k], describe(z, columns)))
            continue
        base = name = _descriptive_name(z, columns)
        n = 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        result.append((name, describe(z, columns)))
    return result
