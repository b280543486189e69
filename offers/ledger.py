"""The ledger: every decision issued, exactly once per (incident, step, customer).

Writes use INSERT … ON CONFLICT DO NOTHING inside one transaction, so a repeated or
concurrent call can never issue a decision twice; callers then read back what is stored,
so every caller sees the same decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from offers.engine import DECISION_COLUMNS, HISTORY_SCHEMA
from offers.incidents import Incident
from offers.schema import decisions, incident_customers, incidents, offer_tables

DECISION_SCHEMA: dict[str, Any] = {
    "incident_id": pl.String,
    "step": pl.Int32,
    "customer_id": pl.String,
    "segment": pl.String,
    "segment_description": pl.String,
    "message_kind": pl.String,
    "channel": pl.String,
    "language": pl.String,
    "text": pl.String,
    "rule_id": pl.String,
    "perk_id": pl.String,
    "perk_title": pl.String,
    "perk_value": pl.Float64,
    "perk_cost": pl.Float64,
    "currency": pl.String,
    "perk_code": pl.String,
    "valid_until": pl.Date,
    "propensity": pl.Float64,
    "reasons": pl.List(pl.String),
}


class Ledger:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _insert(self, table: sa.Table) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def open_incident(
        self, incident: Incident, step: int, customer_ids: Sequence[str], now: datetime
    ) -> list[str]:
        """Record the incident's latest facts and affected customers; return all of them.

        The stored step never goes down: a delay that shrinks claws nothing back.
        """
        facts = {f: getattr(incident.facts, f) for f in incident.facts.__struct_fields__}
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(incidents.c.step).where(incidents.c.incident_id == incident.incident_id)
            ).first()
            if row is None:
                conn.execute(
                    self._insert(incidents).on_conflict_do_nothing(),
                    dict(
                        incident_id=incident.incident_id,
                        kind=incident.kind,
                        occurred_at=incident.occurred_at,
                        facts=facts,
                        step=step,
                        created_at=now,
                        updated_at=now,
                    ),
                )
            else:
                conn.execute(
                    incidents.update()
                    .where(incidents.c.incident_id == incident.incident_id)
                    .values(
                        facts=facts, step=max(step, row.step), updated_at=now, kind=incident.kind
                    )
                )
            if customer_ids:
                conn.execute(
                    self._insert(incident_customers).on_conflict_do_nothing(),
                    [{"incident_id": incident.incident_id, "customer_id": c} for c in customer_ids],
                )
            stored = (
                conn.execute(
                    sa.select(incident_customers.c.customer_id)
                    .where(incident_customers.c.incident_id == incident.incident_id)
                    .order_by(incident_customers.c.customer_id)
                )
                .scalars()
                .all()
            )
        return list(stored)

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(incidents).where(incidents.c.incident_id == incident_id))
                .mappings()
                .first()
            )
            return dict(row) if row else None

    def history(self, incident_id: str) -> pl.DataFrame:
        """What each customer already got in this incident (step and perk)."""
        query = sa.select(decisions.c.customer_id, decisions.c.step, decisions.c.perk_id).where(
            decisions.c.incident_id == incident_id
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return pl.DataFrame(rows, schema=HISTORY_SCHEMA, orient="row")

    def record(self, frame: pl.DataFrame, now: datetime) -> int:
        """Insert decisions not yet in the ledger; return how many were new."""
        if frame.is_empty():
            return 0
        rows = frame.select(DECISION_COLUMNS).with_columns(created_at=pl.lit(now)).to_dicts()
        stmt = self._insert(decisions).on_conflict_do_nothing().returning(decisions.c.customer_id)
        with self.engine.begin() as conn:
            inserted = conn.execute(stmt, rows).scalars().all()
        return len(inserted)

    def decisions(
        self, incident_id: str, step: int | None = None, limit: int | None = None, offset: int = 0
    ) -> pl.DataFrame:
        """Stored decisions of an incident, by step then customer id."""
        query = sa.select(*(decisions.c[c] for c in DECISION_COLUMNS)).where(
            decisions.c.incident_id == incident_id
        )
        if step is not None:
            query = query.where(decisions.c.step == step)
        query = query.order_by(decisions.c.step, decisions.c.customer_id).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return pl.DataFrame(rows, schema=DECISION_SCHEMA, orient="row")

    def count(self, incident_id: str, step: int | None = None) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(decisions)
            .where(decisions.c.incident_id == incident_id)
        )
        if step is not None:
            query = query.where(decisions.c.step == step)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def publish_table(self, name: str, body: str, by: str, reason: str, now: datetime) -> int:
        with self.engine.begin() as conn:
            latest = conn.execute(
                sa.select(sa.func.max(offer_tables.c.version)).where(offer_tables.c.name == name)
            ).scalar()
            version = (latest or 0) + 1
            conn.execute(
                offer_tables.insert().values(
                    name=name,
                    version=version,
                    body=body,
                    published_at=now,
                    published_by=by,
                    reason=reason,
                )
            )
        return version

    def published_table(self) -> tuple[str, int, str] | None:
        """(name, version, TOML body) of the newest published table, if any."""
        query = (
            sa.select(offer_tables.c.name, offer_tables.c.version, offer_tables.c.body)
            .order_by(offer_tables.c.published_at.desc(), offer_tables.c.version.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return (row.name, row.version, row.body) if row else None
