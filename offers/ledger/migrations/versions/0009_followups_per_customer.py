"""Follow-ups: one row per customer and incident (first and next) instead of one per kind.

A million-customer incident then writes about 0.8 million follow-up rows instead of 1.6
million, with as many fewer key and due-time index entries. Existing rows are paired up:
a customer's earliest follow-up becomes `kind`/`due_at`, the next `then_kind`/`then_at`
(the policy schedules at most two: check-in and feedback).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _rename(built: str) -> None:
    """`built` becomes followups, its key named as if it had always been."""
    op.rename_table(built, "followups")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE followups RENAME CONSTRAINT {built}_pkey TO followups_pkey")
    op.create_index("ix_followups_due", "followups", ["due_at"])


def upgrade() -> None:
    op.create_table(
        "followups_paired",
        sa.Column("incident_id", sa.String(128), primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("then_kind", sa.String(32)),
        sa.Column("then_at", sa.DateTime(timezone=True)),
        sa.Column("channel", sa.String(16)),
        sa.Column("language", sa.String(16)),
    )
    op.execute(
        "INSERT INTO followups_paired (incident_id, customer_id, step, kind, due_at,"
        " then_kind, then_at, channel, language)"
        " WITH ranked AS (SELECT *, row_number() OVER (PARTITION BY incident_id, customer_id"
        " ORDER BY due_at, kind) AS n FROM followups)"
        " SELECT f.incident_id, f.customer_id, f.step, f.kind, f.due_at, s.kind, s.due_at,"
        " f.channel, f.language FROM ranked f LEFT JOIN ranked s"
        " ON s.incident_id = f.incident_id AND s.customer_id = f.customer_id AND s.n = 2"
        " WHERE f.n = 1"
    )
    op.drop_index("ix_followups_due", table_name="followups")
    op.drop_table("followups")
    _rename("followups_paired")


def downgrade() -> None:
    op.create_table(
        "followups_single",
        sa.Column("incident_id", sa.String(128), primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(16)),
        sa.Column("language", sa.String(16)),
    )
    op.execute(
        "INSERT INTO followups_single (incident_id, customer_id, kind, step, due_at, channel,"
        " language) SELECT incident_id, customer_id, kind, step, due_at, channel, language"
        " FROM followups UNION ALL SELECT incident_id, customer_id, then_kind, step, then_at,"
        " channel, language FROM followups WHERE then_kind IS NOT NULL"
    )
    op.drop_index("ix_followups_due", table_name="followups")
    op.drop_table("followups")
    _rename("followups_single")
