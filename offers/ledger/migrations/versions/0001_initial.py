"""Incidents, their customers, the decision ledger and offer-table versions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("incident_id", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("facts", sa.JSON, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "incident_customers",
        sa.Column("incident_id", sa.String(128), primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True),
    )
    op.create_table(
        "decisions",
        sa.Column("incident_id", sa.String(128), primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("created_at", TZ, nullable=False),
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
        sa.Column("reasons", sa.Text, nullable=False),
    )
    op.create_index("ix_decisions_customer", "decisions", ["customer_id", "created_at"])
    op.create_table(
        "offer_tables",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("published_at", TZ, nullable=False),
        sa.Column("published_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("offer_tables")
    op.drop_index("ix_decisions_customer", "decisions")
    op.drop_table("decisions")
    op.drop_table("incident_customers")
    op.drop_table("incidents")
