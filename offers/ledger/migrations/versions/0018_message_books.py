"""Message books get drafts and published versions like offer tables, and each wording
records the book version its text came from.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "message_books",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("published_at", TZ, nullable=False),
        sa.Column("published_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.UniqueConstraint("seq", name="uq_message_books_seq"),
    )
    op.create_table(
        "message_book_drafts",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("based_on", sa.Integer),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
    )
    with op.batch_alter_table("decision_reasons") as batch:
        batch.add_column(sa.Column("message_book", sa.String(80)))


def downgrade() -> None:
    with op.batch_alter_table("decision_reasons") as batch:
        batch.drop_column("message_book")
    op.drop_table("message_book_drafts")
    op.drop_table("message_books")
