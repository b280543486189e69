"""Feedback events about decisions; merges the engine and offers heads.

Revision ID: 0003
Revises: 0002, 0002e
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = ("0002", "0002e")
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feedback_events",
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("incident_id", sa.String(128), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rating", sa.Integer),
        sa.Column("within_days", sa.Integer),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
    )
    op.create_index(
        "ix_feedback_decision", "feedback_events", ["incident_id", "step", "customer_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_feedback_decision", "feedback_events")
    op.drop_table("feedback_events")
