"""Offer-table versions carry their publication order; the live table no longer trusts clocks.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("offer_tables") as batch:
        batch.add_column(sa.Column("seq", sa.Integer))
    # Versions published so far keep the order the engine saw: by time, then version.
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT name, version FROM offer_tables ORDER BY published_at, version")
    ).all()
    for seq, (name, version) in enumerate(rows, start=1):
        conn.execute(
            sa.text("UPDATE offer_tables SET seq = :seq WHERE name = :name AND version = :v"),
            {"seq": seq, "name": name, "v": version},
        )
    with op.batch_alter_table("offer_tables") as batch:
        batch.alter_column("seq", existing_type=sa.Integer, nullable=False)
        batch.create_unique_constraint("uq_offer_tables_seq", ["seq"])


def downgrade() -> None:
    with op.batch_alter_table("offer_tables") as batch:
        batch.drop_constraint("uq_offer_tables_seq", type_="unique")
        batch.drop_column("seq")
