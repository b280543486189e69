"""Work that depends only on a published table or message book, done once per object.

Tables and books are frozen msgspec Structs that are never changed once published, but
they hold lists, so they cannot be hashed: they are remembered by identity, and the entry
keeps the object itself so that its id cannot be taken by another object while cached.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import wraps
from typing import Any, TypeVar

__all__ = ["per_object"]

R = TypeVar("R")


def per_object(fn: Callable[..., R], maxsize: int = 16) -> Callable[..., R]:
    """`fn(obj, *args)` remembered per (obj by identity, args); `args` must be hashable.
    Callers must not change what it returns (polars frames and expressions are not)."""
    cache: dict[tuple[Hashable, ...], tuple[Any, R]] = {}

    @wraps(fn)
    def cached(obj: Any, *args: Hashable) -> R:
        key = (id(obj), *args)
        entry = cache.get(key)
        if entry is not None and entry[0] is obj:
            return entry[1]
        if len(cache) >= maxsize:
            cache.clear()
        value = fn(obj, *args)
        cache[key] = (obj, value)
        return value

    return cached
