"""Idempotency keys are each caller's own, and claimed before the work they guard.

The key becomes (scope, key), the scope being the API key's id, so two callers who pick
the same key never see each other's responses. A request claims its key before it decides
(`claim`, with no response yet) and stores its response after, so a concurrent request
with another body is refused before it writes anything. Responses stored before carry the
empty scope, which no caller has: one repeated after the upgrade is decided again, which
the ledger's exactly-once key makes a replay.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _rename(built: str) -> None:
    """`built` becomes idempotency, its key named as if it had always been."""
    op.rename_table(built, "idempotency")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE idempotency RENAME CONSTRAINT {built}_pkey TO idempotency_pkey")


def upgrade() -> None:
    op.create_table(
        "idempotency_scoped",
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("body_digest", sa.String(64), nullable=False),
        sa.Column("claim", sa.String(32)),
        sa.Column("status_code", sa.Integer),
        sa.Column("response", sa.LargeBinary),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.execute(
        "INSERT INTO idempotency_scoped (scope, key, body_digest, status_code, response,"
        " created_at) SELECT '', key, body_digest, status_code, response, created_at"
        " FROM idempotency"
    )
    op.drop_table("idempotency")
    _rename("idempotency_scoped")


def downgrade() -> None:
    """Stored responses go back under their key alone (of a key two callers used, the
    first one stored); claims still in progress are dropped."""
    op.create_table(
        "idempotency_unscoped",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("body_digest", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.execute(
        "INSERT INTO idempotency_unscoped (key, body_digest, status_code, response, created_at)"
        " SELECT key, body_digest, status_code, response, created_at FROM idempotency i"
        " WHERE response IS NOT NULL AND NOT EXISTS (SELECT 1 FROM idempotency e"
        " WHERE e.key = i.key AND e.response IS NOT NULL AND (e.created_at < i.created_at"
        " OR (e.created_at = i.created_at AND e.scope < i.scope)))"
    )
    op.drop_table("idempotency")
    _rename("idempotency_unscoped")
