"""Prometheus metrics: requests and latency (litestar's middleware) plus what incidents issue.

With several workers, `makegood serve` points PROMETHEUS_MULTIPROC_DIR at a folder the
workers share, so `/metrics` on any worker reports the sum over all of them.
"""

from __future__ import annotations

from collections.abc import Callable

from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import Counter, Gauge

__all__ = [
    "PREVIEWS",
    "MetricsController",
    "prometheus_config",
    "record_learning",
    "record_outcome",
]

DECISIONS = Counter("makegood_decisions_total", "Decisions recorded, by incident kind.", ["kind"])
PERKS = Counter("makegood_perks_total", "Perks issued, by incident kind.", ["kind"])
COST = Counter("makegood_perk_cost_total", "Cost of perks issued, by incident kind.", ["kind"])
BUDGET_REFUSALS = Counter(
    "makegood_budget_refusals_total",
    "Perks not given because the incident budget ran out, by incident kind.",
    ["kind"],
)

PREVIEWS = Counter(
    "makegood_previews_total",
    "Previews answered, by source: memory (a remembered situation, no engine) or "
    "worked_out (the engine for a new situation, or the ledger for a customer already decided).",
    ["source"],
)


LEARNING_READ = Gauge(
    "makegood_learning_evidence_read_timestamp_seconds",
    "When the posteriors learning decides with were last read from the ledger (Unix time, "
    "per worker); time() minus this is how old the evidence is.",
    multiprocess_mode="liveall",
)
LEARNING_REFRESH = Gauge(
    "makegood_learning_refresh_seconds",
    "At most this many seconds pass before a worker reads new feedback "
    "(MAKEGOOD_LEARNING_REFRESH).",
    multiprocess_mode="max",
)


def record_learning(refresh: float) -> Callable[[float], None]:
    """Report the refresh setting now, and each read of the posteriors as it happens."""
    LEARNING_REFRESH.set(refresh)
    return LEARNING_READ.set


def record_outcome(kind: str, issued: int, perks: int, cost: float, budget_refusals: int) -> None:
    """Count what one incident step recorded (dry runs should not be counted)."""
    DECISIONS.labels(kind).inc(issued)
    PERKS.labels(kind).inc(perks)
    COST.labels(kind).inc(cost)
    BUDGET_REFUSALS.labels(kind).inc(budget_refusals)


def prometheus_config() -> PrometheusConfig:
    """Request counts and latency histograms by method, route template and status."""
    return PrometheusConfig(
        app_name="makegood",
        prefix="makegood",
        group_path=True,  # label by route template, so ids never become label values
        exclude=["/metrics", "/healthz"],
    )


class MetricsController(PrometheusController):
    """`GET /metrics` in Prometheus text format; open, like the probes."""

    path = "/metrics"
    include_in_schema = False
