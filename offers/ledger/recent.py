"""The most recently updated incidents with what they issued and cost: the desk's overview.

Two indexed reads: the newest incidents matching the filters (kind, when it occurred, and a
status the supervisor cares about), then one aggregate over their decisions only, so the
overview stays quick however long the ledger grows. Every amount carries its currency.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, get_args

import msgspec
import polars as pl
import sqlalchemy as sa

from offers.ledger.schema import decision_reasons, decisions, incidents
from offers.ledger.store import Ledger

__all__ = ["STATUSES", "IncidentFilter", "IncidentLine", "incident_lines_frame", "recent_incidents"]

Status = Literal["needs-human", "over-budget", "no-decisions"]
#: What the list can be narrowed to: a customer flagged for a human, spent above budget,
#: nobody decided yet (the delay below notice).
STATUSES: tuple[str, ...] = get_args(Status)


class IncidentFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which incidents to list: `kind`, occurred on or after `since` and before `until`,
    with `status` (or just `incident_id`); None is any."""

    incident_id: str | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: Status | None = None


class IncidentLine(msgspec.Struct, frozen=True, kw_only=True):
    """One incident as listed: its step, how many decisions and perks, spent against budget
    (both in `currency`, the currency of its perks)."""

    incident_id: str
    kind: str
    step: int
    occurred_at: datetime
    updated_at: datetime
    budget: float | None
    decisions: int
    perks: int
    needs_human: int
    spent: float
    currency: str


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _where(
    query: sa.Select[tuple[object, ...]], f: IncidentFilter
) -> sa.Select[tuple[object, ...]]:
    i, d = incidents.c, decisions.c
    if f.incident_id is not None:
        query = query.where(i.incident_id == f.incident_id)
    if f.kind is not None:
        query = query.where(i.kind == f.kind)
    if f.since is not None:
        query = query.where(i.occurred_at >= f.since)
    if f.until is not None:
        query = query.where(i.occurred_at < f.until)
    mine = d.incident_id == i.incident_id
    if f.status == "needs-human":
        query = query.where(sa.exists().where(mine, d.needs_human.is_(True)))
    elif f.status == "over-budget":
        spent = sa.select(sa.func.coalesce(sa.func.sum(d.charged_cost), 0.0)).where(mine)
        query = query.where(i.budget.is_not(None), spent.scalar_subquery() > i.budget)
    elif f.status == "no-decisions":
        query = query.where(~sa.exists().where(mine))
    return query


def recent_incidents(
    ledger: Ledger,
    limit: int = 50,
    where: IncidentFilter | None = None,
    default_currency: str = "EUR",
) -> list[IncidentLine]:
    """The `limit` most recently updated incidents matching `where`, newest first; an
    incident without perks is in `default_currency`."""
    newest = _where(
        sa.select(
            incidents.c.incident_id,
            incidents.c.kind,
            incidents.c.step,
            incidents.c.occurred_at,
            incidents.c.updated_at,
            incidents.c.budget,
        ),
        where or IncidentFilter(),
    )
    newest = newest.order_by(incidents.c.updated_at.desc(), incidents.c.incident_id).limit(limit)
    d, w = decisions.c, decision_reasons.c
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
                    sa.func.max(d.currency).label("currency"),  # rows before migration 0010
                )
                .where(d.incident_id.in_(ids))
                .group_by(d.incident_id)
            )
        }
        currencies = dict(
            tx.conn.execute(
                sa.select(w.incident_id, sa.func.max(w.currency))
                .where(w.incident_id.in_(ids), w.currency.is_not(None))
                .group_by(w.incident_id)
            ).all()
        )
    out = []
    for r in rows:
        t = totals.get(r.incident_id)
        currency = currencies.get(r.incident_id) or (t.currency if t else None)
        out.append(
            IncidentLine(
                incident_id=r.incident_id,
                kind=r.kind,
                step=r.step,
                occurred_at=_aware(r.occurred_at),
                updated_at=_aware(r.updated_at),
                budget=r.budget,
                decisions=int(t.decisions) if t else 0,
                perks=int(t.perks) if t else 0,
                needs_human=int(t.needs_human or 0) if t else 0,
                spent=round(float(t.spent), 2) if t else 0.0,
                currency=currency or default_currency,
            )
        )
    return out


def incident_lines_frame(lines: list[IncidentLine]) -> pl.DataFrame:
    """The listed incidents as columns, for a CSV or Parquet export."""
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "incident_id": pl.String,
        "kind": pl.String,
        "step": pl.Int32,
        "occurred_at": pl.Datetime("us", "UTC"),
        "updated_at": pl.Datetime("us", "UTC"),
        "budget": pl.Float64,
        "spent": pl.Float64,
        "currency": pl.String,
        "decisions": pl.Int64,
        "perks": pl.Int64,
        "needs_human": pl.Int64,
    }
    rows = [{k: getattr(line, k) for k in schema} for line in lines]
    return pl.DataFrame(rows, schema=schema)
