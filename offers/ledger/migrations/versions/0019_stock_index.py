"""Perks given per airport and day are counted through an index: stock was counted by
reading every decision, on every update and preview at an airport with stocked perks.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_decisions_stock",
        "decisions",
        ["airport", "created_at"],
        postgresql_where=sa.text("perk_id IS NOT NULL"),
        sqlite_where=sa.text("perk_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_decisions_stock", table_name="decisions")
