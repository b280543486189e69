"""A served worker's refresher: what other processes change, read off the request path.

Another process may publish an offer table or message book, record feedback that moves
learning's posteriors, or revoke an API key. A request that found such a check due used to
make it itself on the event loop (1-26 ms), and every request queued behind it waited: at
hundreds of requests a second, that was the tail. Here one daemon thread per worker makes
the checks: the live tables, message books and revoked keys every second, the posteriors
every `learning.ttl` seconds; it reads and swaps in new objects, and requests only read
attributes (a remembered key is no longer read per request: a revocation by another
process counts within a second, one made through this worker at once).

What stays on the request path: the first read of each, and the posteriors after this
process recorded feedback (`LearningSource.forget`), which the next decision sees at once.
Without a refresher (the CLI, tests over `create_app`) requests check on demand as before.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from api.keys import KeyStore
from api.runtime import Runtime

log = logging.getLogger("makegood")

__all__ = ["Refresher"]


class Refresher:
    """Checks `runtime`'s live tables, message books and posteriors, and which of `keys`
    are revoked, every `every` seconds."""

    def __init__(self, runtime: Runtime, keys: KeyStore | None = None, every: float = 1.0) -> None:
        self.runtime = runtime
        self.keys = keys
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._learned_at = float("-inf")

    def start(self) -> None:
        """Take the checks over from the request path, then check every `every` seconds."""
        self.tick()  # the first read here, not in the first request
        self._watch(True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="live-refresher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop checking; requests check on demand again."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._watch(False)

    def tick(self) -> None:
        """One round of checks: tables and books always, posteriors when `ttl` is up."""
        runtime = self.runtime
        runtime.tables.refresh()
        runtime.refresh_messages()
        if self.keys is not None:
            self.keys.refresh_revoked()
        learning = runtime.learning
        if learning is not None and time.monotonic() - self._learned_at >= learning.ttl:
            learning.refresh(datetime.now(UTC))
            self._learned_at = time.monotonic()

    def _watch(self, on: bool) -> None:
        runtime = self.runtime
        runtime.tables.watched = on
        runtime.messages_watched = on
        if runtime.learning is not None:
            runtime.learning.watched = on
        if self.keys is not None and not on:
            self.keys.revoked = None  # each use reads the key's row again

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.tick()
            except SQLAlchemyError as exc:  # the database is away: serve what was read
                log.warning("refresher: database unavailable: %s", type(exc).__name__)
            except Exception:  # a bug must not end the checking
                log.exception("refresher failed")
