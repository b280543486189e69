"""Prometheus metrics: requests and latency (litestar's middleware) plus what incidents issue.

With several workers, `makegood serve` points PROMETHEUS_MULTIPROC_DIR at a folder the
workers share, so `/metrics` on any worker reports the sum over all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from litestar.plugins.prometheus import (
    PrometheusConfig,
    PrometheusController,
    PrometheusMiddleware,
)
from litestar.types import Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge

__all__ = [
    "PREVIEWED",
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
#: `PREVIEWS` by source, each series looked up once
PREVIEWED = {source: PREVIEWS.labels(source) for source in ("memory", "worked_out")}


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


class _RequestMetrics(PrometheusMiddleware):
    """litestar's request metrics (the same series, labels and values), with each label
    set's series looked up once: litestar looks them up four times per request, by the
    labels as a dict, which cost a preview a tenth of its time."""

    def __init__(self, app: Any, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        self._busy: dict[tuple[str, str], Any] = {}
        self._done: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._plain = not (config.labels or config.exemplars or config.excluded_http_methods)

    def _labels(self, method: str, path: str, status: int) -> dict[str, str | int | float]:
        return {
            "method": method,
            "path": path,
            "status_code": status,
            "app_name": self._config.app_name,
        }

    def _in_progress(self, method: str, path: str) -> Any:
        found = self._busy.get((method, path))
        if found is None:
            labels = self._labels(method, path, 200)  # as litestar labels it
            found = self.requests_in_progress(labels).labels(*labels.values())
            self._busy[(method, path)] = found
        return found

    def _answered(self, method: str, path: str, status: int) -> tuple[Any, Any]:
        """(requests, durations) for these labels."""
        found = self._done.get((method, path, status))
        if found is None:
            labels = self._labels(method, path, status)
            values = list(labels.values())
            found = (
                self.request_count(labels).labels(*values),
                self.request_time(labels).labels(*values),
            )
            self._done[(method, path, status)] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        http: Any = scope
        if not self._plain or http["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        method = http["method"]
        path = http["path_template"] if self._config.group_path else http["path"]
        start = time.perf_counter()
        seen: dict[str, Any] = {"status": 200, "duration": 0.0}

        async def noted(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["duration"] = time.perf_counter() - start
            await send(message)

        busy = self._in_progress(method, path)
        busy.inc()
        try:
            await self.app(scope, receive, noted)
        finally:
            busy.dec()
            status = seen["status"]
            requests, durations = self._answered(method, path, status)
            if status >= 500:  # rare: looked up as litestar does
                labels = self._labels(method, path, status)
                self.requests_error_count(labels).labels(*labels.values()).inc()
            requests.inc()
            durations.observe(seen["duration"])


def prometheus_config() -> PrometheusConfig:
    """Request counts and latency histograms by method, route template and status."""
    return PrometheusConfig(
        app_name="makegood",
        prefix="makegood",
        group_path=True,  # label by route template, so ids never become label values
        exclude=["/metrics", "/healthz"],
        middleware_class=_RequestMetrics,
    )


class MetricsController(PrometheusController):
    """`GET /metrics` in Prometheus text format; open, like the probes."""

    path = "/metrics"
    include_in_schema = False
