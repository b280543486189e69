"""A shipped offer table at start-up: published only where it fits the data.

A fresh folder's first start publishes the default table so `makegood serve` works with
nothing prepared; on an analyst's own data it may not fit, and then it waits as a draft.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from offers.catalog import Checks, Finding, OfferTable, coverage, decode_table
from offers.ledger.versions import PublishRefused, Store

__all__ = ["Shipped", "publish_shipped"]


class Shipped(msgspec.Struct, frozen=True, kw_only=True):
    """What became of a shipped table at start-up: published (`version`), or kept as a
    draft (`version` None) because `findings` hold errors against this data."""

    name: str
    version: int | None
    findings: list[Finding]


def publish_shipped(store: Store, body: str, checks: Checks, now: datetime) -> Shipped:
    """Publish a shipped table for incident kinds nothing serves yet, only if it fits here.

    A shipped table speaks to personas by traits (business travellers, duty-free shoppers,
    a shop's regulars). Where it has errors against this data, or no segment of it is any of
    its personas (an airline's table in a shop's folder), making it live would hand every
    customer the rules for "everyone else", so it waits as a draft for a marketer to fit it,
    and the engine answers with the law and an apology meanwhile. A draft already waiting
    under that name (a marketer's work) is left as it is.
    """
    table = decode_table(body, "shipped offer table")
    by, reason = "makegood bootstrap", "default table shipped with makegood"
    try:
        if checks.traits is not None and not coverage(table, checks.traits).share:
            raise PublishRefused(table.name, [*checks.run(table), _fits_nobody(table)])
        done = store.publish(table.name, by=by, reason=reason, now=now, checks=checks, body=body)
    except PublishRefused as refused:
        if store.draft(table.name) is None:
            store.save_draft(table, by, now, body)
        return Shipped(name=table.name, version=None, findings=refused.findings)
    return Shipped(name=table.name, version=done.info.version, findings=done.findings)


def _fits_nobody(table: OfferTable) -> Finding:
    """A shipped table whose personas fit no segment here was written for other customers
    (an airline's table in a shop's folder): live, it would only ever give its catch-alls."""
    personas = ", ".join(p.id for p in table.personas) or "none"
    return Finding(
        severity="error",
        code="fits-no-segment",
        table=table.name,
        field="personas",
        message=f"no segment here is any of its personas ({personas}): written for other "
        "customers than these",
    )
