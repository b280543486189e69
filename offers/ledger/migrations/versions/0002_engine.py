"""Engine: charged cost, top-ups, holdout, human flags, entitlements, follow-ups, idempotency.

Revision ID: 0002e
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002e"
down_revision = "0001"
branch_labels = ("engine",)
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("incidents", sa.Column("budget", sa.Float))
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("charged_cost", sa.Float))
        batch.add_column(sa.Column("replaces", sa.String(64)))
        batch.add_column(sa.Column("holdout", sa.Boolean))
        batch.add_column(sa.Column("needs_human", sa.Boolean))
        batch.add_column(sa.Column("entitlements", sa.Text))
        batch.add_column(sa.Column("airport", sa.String(3)))
    op.create_table(
        "followups",
        sa.Column("incident_id", sa.String(128), primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("channel", sa.String(16)),
        sa.Column("language", sa.String(16)),
    )
    op.create_index("ix_followups_due", "followups", ["due_at"])
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "idempotency",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("body_digest", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("idempotency")
    op.drop_table("jobs")
    op.drop_index("ix_followups_due", "followups")
    op.drop_table("followups")
    with op.batch_alter_table("decisions") as batch:
        for column in (
            "airport",
            "entitlements",
            "needs_human",
            "holdout",
            "replaces",
            "charged_cost",
        ):
            batch.drop_column(column)
    op.drop_column("incidents", "budget")
