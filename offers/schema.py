"""The database schema (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Alembic migrations in `offers/migrations` create exactly these tables; a test keeps the two
in step.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("incident_id", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("facts", sa.JSON, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("budget", sa.Float),
)

incident_customers = sa.Table(
    "incident_customers",
    metadata,
    sa.Column("incident_id", sa.String(128), primary_key=True),
    sa.Column("customer_id", sa.String(64), primary_key=True),
)

#: One row per (incident, step, customer): the ledger's exactly-once key.
decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("incident_id", sa.String(128), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("segment", sa.String(64)),
    sa.Column("segment_description", sa.String(256)),
    sa.Column("message_kind", sa.String(16), nullable=False),
    sa.Column("channel", sa.String(16)),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("text", sa.Text),
    sa.Column("rule_id", sa.String(64)),
    sa.Column("perk_id", sa.String(64)),
    sa.Column("perk_title", sa.String(256)),
    sa.Column("perk_value", sa.Float),
    sa.Column("perk_cost", sa.Float),
    sa.Column("currency", sa.String(3)),
    sa.Column("perk_code", sa.String(32)),
    sa.Column("valid_until", sa.Date),
    sa.Column("propensity", sa.Float, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),  # JSON list, written as text in bulk
    sa.Column("charged_cost", sa.Float),
    sa.Column("replaces", sa.String(64)),
    sa.Column("holdout", sa.Boolean),
    sa.Column("needs_human", sa.Boolean),
    sa.Column("entitlements", sa.Text),  # JSON list, the same for a whole step
)
sa.Index("ix_decisions_customer", decisions.c.customer_id, decisions.c.created_at)

#: Follow-up messages scheduled with decisions, served to the messaging system when due.
followups = sa.Table(
    "followups",
    metadata,
    sa.Column("incident_id", sa.String(128), primary_key=True),
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("step", sa.Integer, nullable=False),  # the decision it was scheduled with
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("channel", sa.String(16)),
    sa.Column("language", sa.String(16)),
)
sa.Index("ix_followups_due", followups.c.due_at)

#: Responses stored under a caller's Idempotency-Key, with a digest of the request body.
idempotency = sa.Table(
    "idempotency",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("body_digest", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

#: Offer-table versions as marketing published them (TOML text, the canonical form).
offer_tables = sa.Table(
    "offer_tables",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_by", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

#: Offer-table drafts: marketing's work in progress, one per table name, not yet live.
offer_table_drafts = sa.Table(
    "offer_table_drafts",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("based_on", sa.Integer),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(128), nullable=False),
)
