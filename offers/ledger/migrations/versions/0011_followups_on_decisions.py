"""Follow-ups live on the decision they were scheduled with, not in a table of their own.

A customer's follow-ups (at most two: check-in and feedback) are planned with their
apology and go out on its channel in its language, so the apology's row can carry them:
a million-customer step then writes a million rows, not 1.8 million, and one key index
fewer. Existing follow-up rows move onto their decisions (same incident, customer and
step); the downgrade moves them back.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_COLUMNS = {
    "followup_kind": "kind",
    "followup_at": "due_at",
    "then_kind": "then_kind",
    "then_at": "then_at",
}
_SAME = (
    "f.incident_id = decisions.incident_id AND f.customer_id = decisions.customer_id"
    " AND f.step = decisions.step"
)


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("followup_kind", sa.String(32)))
        batch.add_column(sa.Column("followup_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("then_kind", sa.String(32)))
        batch.add_column(sa.Column("then_at", sa.DateTime(timezone=True)))
    assignments = ", ".join(
        f"{mine} = (SELECT f.{theirs} FROM followups f WHERE {_SAME})"
        for mine, theirs in _COLUMNS.items()
    )
    op.execute(
        f"UPDATE decisions SET {assignments} WHERE EXISTS (SELECT 1 FROM followups f WHERE {_SAME})"
    )
    op.create_index(
        "ix_decisions_followup_due",
        "decisions",
        ["followup_at"],
        postgresql_where=sa.text("followup_at IS NOT NULL"),
        sqlite_where=sa.text("followup_at IS NOT NULL"),
    )
    op.drop_index("ix_followups_due", table_name="followups")
    op.drop_table("followups")


def downgrade() -> None:
    op.create_table(
        "followups",
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
    op.create_index("ix_followups_due", "followups", ["due_at"])
    op.execute(
        "INSERT INTO followups (incident_id, customer_id, step, kind, due_at, then_kind,"
        " then_at, channel, language) SELECT incident_id, customer_id, step, followup_kind,"
        " followup_at, then_kind, then_at, channel, language FROM decisions"
        " WHERE followup_kind IS NOT NULL"
    )
    op.drop_index("ix_decisions_followup_due", table_name="decisions")
    with op.batch_alter_table("decisions") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
