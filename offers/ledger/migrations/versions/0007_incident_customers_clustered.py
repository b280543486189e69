"""On SQLite, incident_customers is stored WITHOUT ROWID: its key is the whole row.

A million-customer incident then writes one B-tree instead of a table and its key index.
PostgreSQL has no such option; nothing changes there.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "incident_customers", recreate="always", table_kwargs={"sqlite_with_rowid": False}
        ):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "incident_customers", recreate="always", table_kwargs={"sqlite_with_rowid": True}
        ):
            pass
