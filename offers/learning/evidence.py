"""What learning knows: per segment x perk, a Beta posterior of acceptance from feedback.

Per segment x perk: a Beta posterior of acceptance (redeemed / delivered), the mean rating
and the counts behind them, read from the ledger's decisions and their feedback. The engine
is handed them as data (`offers.decide.choice.Learning`) and uses them only among perks an
offer table lists as a rule's alternatives; how it chooses is said there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

from offers.decide import DEFAULT_CONFIG, POSTERIOR_SCHEMA, ExploreConfig, Learning
from offers.learning.outcomes import DECISION_KEY, decision_flags, feedback_about
from offers.ledger import Ledger

__all__ = [
    "REFRESH_SECONDS",
    "LearningSource",
    "load_learning",
    "posteriors",
    "top_perks",
]


def posteriors(outcomes: pl.DataFrame, config: ExploreConfig = DEFAULT_CONFIG) -> pl.DataFrame:
    """Beta posteriors of acceptance and rating summaries per segment x perk (delivered only)."""
    seen = outcomes.filter(pl.col("perk_id").is_not_null() & pl.col("delivered"))
    return (
        seen.group_by("segment", "perk_id")
        .agg(
            delivered=pl.len().cast(pl.UInt32),
            redeemed=pl.col("redeemed").sum().cast(pl.UInt32),
            ratings=pl.col("rating").count().cast(pl.UInt32),
            rating_mean=pl.col("rating").mean(),
            complaints=pl.col("complaint").sum().cast(pl.UInt32),
        )
        .with_columns(
            alpha=config.prior_alpha + pl.col("redeemed"),
            beta=config.prior_beta + pl.col("delivered") - pl.col("redeemed"),
        )
        .with_columns(acceptance=pl.col("alpha") / (pl.col("alpha") + pl.col("beta")))
        .select(pl.col(c).cast(t) for c, t in POSTERIOR_SCHEMA.items())
        .sort("segment", "perk_id")
    )


def top_perks(post: pl.DataFrame, min_events: int = DEFAULT_CONFIG.min_events) -> pl.DataFrame:
    """Per segment: the perk with the best posterior mean among those with `min_events`
    delivered decisions (what the engine would exploit), as `top` and `top_acceptance`."""
    return (
        post.filter(pl.col("delivered") >= min_events)
        .sort("acceptance", "perk_id", descending=[True, False])
        .group_by("segment", maintain_order=True)
        .agg(top=pl.col("perk_id").first(), top_acceptance=pl.col("acceptance").first())
        .sort("segment")
    )


def load_learning(
    ledger: Ledger, now: datetime, config: ExploreConfig = DEFAULT_CONFIG, seed: int | None = None
) -> Learning:
    """Posteriors from the ledger's last `config.window_days`, ready for `StepContext`.

    Reads only events about decisions that carried a perk, never the whole ledger.
    """
    found = feedback_about(ledger, now - timedelta(days=config.window_days), with_perk=True)
    key = list(DECISION_KEY)
    per_decision = (
        found.group_by(key)
        .agg(pl.col("segment").first(), pl.col("perk_id").first())
        .join(decision_flags(found), on=key)
    )
    return Learning(posteriors(per_decision, config), config, seed)


#: How old the posteriors a decision uses may be, by default, in seconds.
REFRESH_SECONDS = 2.0


@dataclass
class LearningSource:
    """Posteriors for `Parts`: read from the ledger at most every `ttl` seconds, and at
    once after `forget` (this process recorded feedback).

    So feedback reaches the next decision in this process at once, and in every other
    process sharing the ledger within `ttl`. While `watched` (a served worker's refresher,
    api/refresher.py, calls `refresh` every `ttl`), a decision reads the ledger itself only
    after `forget`: a read takes milliseconds, which a request should not wait for.
    `on_read` is told the wall-clock time of each read (the server reports it on /metrics).
    """

    ledger: Ledger
    config: ExploreConfig = field(default_factory=ExploreConfig)
    ttl: float = REFRESH_SECONDS
    seed: int | None = None
    on_read: Callable[[float], None] | None = None
    watched: bool = False
    _cached: Learning | None = None
    _read_at: float = 0.0
    _stale: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def forget(self) -> None:
        """Read the ledger again for the next decision: new feedback was recorded."""
        self._stale = True

    def __call__(self, now: datetime) -> Learning:
        cached = self._cached
        fresh = self.watched or time.monotonic() - self._read_at <= self.ttl
        if cached is not None and not self._stale and fresh:
            return cached
        return self.refresh(now)

    def refresh(self, now: datetime) -> Learning:
        """Read the posteriors now. One read at a time: a decision after `forget` waits
        for a read under way and then reads again, so it never gets one begun before."""
        with self._lock:
            self._stale = False
            fresh = load_learning(self.ledger, now, self.config, self.seed)
            # Unchanged posteriors keep their object, so what previews remember (by it)
            # stays valid until feedback moves them.
            if self._cached is None or not fresh.posteriors.equals(self._cached.posteriors):
                self._cached = fresh
            self._read_at = time.monotonic()
            cached = self._cached
        if self.on_read is not None:
            self.on_read(time.time())
        return cached
