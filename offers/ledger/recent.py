"""The most recently updated incidents with what they issued and cost: the desk's overview.

Two indexed reads: the newest incidents, then one aggregate over their decisions only, so
the overview stays quick however long the ledger grows.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import sqlalchemy as sa

from offers.ledger.schema import decisions, incidents
from offers.ledger.store import Ledger

__all__ = ["IncidentLine", "recent_incidents"]


class IncidentLine(msgspec.Struct, frozen=True, kw_only=True):
    """One incident as listed: its step, how many decisions and perks, spent against budget."""

    incident_id: str
    kind: str
    step: int
    updated_at: datetime
    budget: float | None
    decisions: int
    perks: int
    needs_human: int
    spent: float


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def recent_incidents(ledger: Ledger, limit: int = 50) -> list[IncidentLine]:
    """The `limit` most recently updated incidents, newest first."""
    newest = (
        sa.select(
            incidents.c.incident_id,
            incidents.c.kind,
            incidents.c.step,
            incidents.c.updated_at,
            incidents.c.budget,
        )
        .order_by(incidents.c.updated_at.desc(), incidents.c.incident_id)
        .limit(limit)
    )
    d = decisions.c
    with ledger.reading() as tx:
        rows = tx.conn.execute(newest).all()
        ids = [r.incident_id for r in rows]
        totals = {
            r.incident_id: r
            for r in tx.conn.execute(
                sa.select(
                    d.incident_id,
                    sa.func.count().label("decisions"),
                    sa.func.count(d.perk_id).label("perks"),
                    sa.func.sum(sa.case((d.needs_human, 1), else_=0)).label("needs_human"),
                    sa.func.coalesce(sa.func.sum(d.charged_cost), 0.0).label("spent"),
                )
                .where(d.incident_id.in_(ids))
                .group_by(d.incident_id)
            )
        }
    out = []
    for r in rows:
        t = totals.get(r.incident_id)
        out.append(
            IncidentLine(
                incident_id=r.incident_id,
                kind=r.kind,
                step=r.step,
                updated_at=_aware(r.updated_at),
                budget=r.budget,
                decisions=int(t.decisions) if t else 0,
                perks=int(t.perks) if t else 0,
                needs_human=int(t.needs_human or 0) if t else 0,
                spent=round(float(t.spent), 2) if t else 0.0,
            )
        )
    return out
