"""Offer tables for tests: the shipped table as a marketer who names segments would write it.

The shipped table speaks to personas; guard rails about segment *names* (promotion refused
when a name a rule uses vanishes, renames) need a table whose rules name segments. This is
the shipped table with each persona replaced by the synthetic population's segments that
are that persona (the same segments the traits match: tests/test_personas.py checks it).
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from api.runtime import Runtime
from offers.catalog import OfferTable, dump_table, load_default_table, resolve
from offers.ledger import publish_table

DEMO_PERSONAS: dict[str, str | None] = {
    "road-warrior": "business",
    "premium-business": "business",
    "duty-free-shopper": "shopper",
    "leisure-family": "family",
    "occasional-flyer": None,
}


def named_table() -> OfferTable:
    """The shipped flight table with segment names where it has personas."""
    return msgspec.structs.replace(resolve(load_default_table(), DEMO_PERSONAS), personas=[])


def named_body() -> str:
    return dump_table(named_table())


def publish_named(runtime: Runtime) -> None:
    """Make `named_table` the live flight table of `runtime` (a new version)."""
    publish_table(
        runtime.ledger, "flight-delay", named_body(), "tests", "names segments", datetime.now(UTC)
    )
    runtime.reload_table()
