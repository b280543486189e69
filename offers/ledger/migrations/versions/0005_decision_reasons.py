"""Decision reasons and entitlements stored once per distinct wording, not on every row.

Revision ID: 0005
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decision_reasons",
        sa.Column("incident_id", sa.String(128), primary_key=True),
        sa.Column("reason_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("entitlements", sa.Text),
    )
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("reason_id", sa.BigInteger))
        batch.alter_column("reasons", existing_type=sa.Text, nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("reason_id")
    op.drop_table("decision_reasons")
