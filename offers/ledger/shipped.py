"""A shipped offer table at start-up: published only where it fits the data.

A fresh folder's first start publishes the default table so `makegood serve` works with
nothing prepared; on an analyst's own data it may not fit, and then it waits as a draft.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from offers.catalog import Checks, Finding, decode_table
from offers.ledger.versions import PublishRefused, Store

__all__ = ["Shipped", "no_live_table", "publish_shipped"]


class Shipped(msgspec.Struct, frozen=True, kw_only=True):
    """What became of a shipped table at start-up: published (`version`), or kept as a
    draft (`version` None) because `findings` hold errors against this data."""

    name: str
    version: int | None
    findings: list[Finding]


def publish_shipped(store: Store, body: str, checks: Checks, now: datetime) -> Shipped:
    """Publish a shipped table on a folder with none live, only if it validates here.

    A shipped table names the segments of the synthetic population; an analyst's own
    segmentation has others. Making such a table live would hand every customer the rules
    for "everyone else" (or worse), so it waits as a draft for a marketer to fit it, and the
    engine answers with the law and an apology meanwhile. A draft already waiting under
    that name (a marketer's work) is left as it is.
    """
    table = decode_table(body, "shipped offer table")
    by, reason = "makegood bootstrap", "default table shipped with makegood"
    try:
        done = store.publish(table.name, by=by, reason=reason, now=now, checks=checks, body=body)
    except PublishRefused as refused:
        if store.draft(table.name) is None:
            store.save_draft(table, by, now, body)
        return Shipped(name=table.name, version=None, findings=refused.findings)
    return Shipped(name=table.name, version=done.info.version, findings=done.findings)


def no_live_table(store: Store) -> str:
    """Why no perk is offered while nothing is published, naming the drafts that wait."""
    drafts = [t.name for t in store.tables() if t.draft]
    waiting = f"draft {', '.join(drafts)} waits to be fixed and published" if drafts else ""
    return (
        "no offer table is live: "
        + (waiting or "none is published")
        + ("; only what the law owes and an apology")
    )
