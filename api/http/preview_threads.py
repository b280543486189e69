"""Threads for previews the engine works out, apart from the pool the other routes use.

Such previews take the engine one at a time (`offers.preview`), so a burst of new
situations (the start of a disruption, a table published) would otherwise hold every
thread of the pool that incident writes, decision pages and status reads run in, and those
would wait seconds behind the previews. Beyond `PREVIEW_THREADS`, previews wait for a
thread without holding one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from litestar.datastructures import State

__all__ = ["PREVIEW_THREADS", "worked_out"]

PREVIEW_THREADS = 16


async def worked_out(state: State, found: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`found()` on one of the previews' threads."""
    limiter = state.get("preview_threads")
    if limiter is None:  # made in the worker's event loop, as anyio wants
        limiter = state["preview_threads"] = anyio.CapacityLimiter(PREVIEW_THREADS)
    return await anyio.to_thread.run_sync(found, limiter=limiter)
