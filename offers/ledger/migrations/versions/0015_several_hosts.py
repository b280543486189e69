"""Several hosts on one PostgreSQL: jobs another host can finish, rate limits they share.

A job keeps its input, its owner and a heartbeat, so a job whose host died is taken over
once the heartbeat is older than the lease. Jobs written before have no input: the first
server to find one of them stuck says so and marks it failed. Rate-limit buckets get a
table of their own, unlogged on PostgreSQL.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("input", sa.LargeBinary))
        batch.add_column(sa.Column("owner", sa.String(128)))
        batch.add_column(sa.Column("heartbeat", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="1"))
    op.execute("UPDATE jobs SET heartbeat = updated_at")
    op.create_table(
        "rate_buckets",
        sa.Column("scope", sa.String(32), primary_key=True),
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("granted", sa.Boolean, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # taken from on every request: no WAL, so a take commits without waiting for a disk
        # flush (about 3 ms); after a crash the buckets start full, which is harmless
        op.execute("ALTER TABLE rate_buckets SET UNLOGGED")


def downgrade() -> None:
    op.drop_table("rate_buckets")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("attempts")
        batch.drop_column("heartbeat")
        batch.drop_column("owner")
        batch.drop_column("input")
