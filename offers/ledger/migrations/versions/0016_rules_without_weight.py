"""Offer-table rules have no `weight` any more: stored versions and drafts lose the line.

`weight` was never read (alternatives are how a rule offers a choice now), and a table
that sets it is refused, so a version published with one would stop the server from
loading it. Each stored body that sets a rule's weight on a line of its own loses that
line; the version decides exactly as before. Nothing is given back on downgrade: the
weights meant nothing.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import re
import tomllib

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_WEIGHT = re.compile(r"^[ \t]*weight[ \t]*=[^\n]*\n?", re.MULTILINE)


def _weighted(body: str) -> bool:
    try:
        rules = tomllib.loads(body).get("rules", [])
    except tomllib.TOMLDecodeError:
        return False
    return any(isinstance(r, dict) and "weight" in r for r in rules)


def without_weights(body: str) -> str:
    """`body` without its rules' weight lines, if that leaves a table without weights."""
    if not _weighted(body):
        return body
    stripped = _WEIGHT.sub("", body)
    return body if _weighted(stripped) else stripped


def upgrade() -> None:
    conn = op.get_bind()
    for table, key in (("offer_tables", "name, version"), ("offer_table_drafts", "name")):
        columns = [c.strip() for c in key.split(",")]
        rows = conn.execute(sa.text(f"SELECT {key}, body FROM {table}")).all()
        for *ids, body in rows:
            fixed = without_weights(body)
            if fixed != body:
                where = " AND ".join(f"{c} = :{c}" for c in columns)
                conn.execute(
                    sa.text(f"UPDATE {table} SET body = :body WHERE {where}"),
                    {"body": fixed, **dict(zip(columns, ids, strict=True))},
                )


def downgrade() -> None:
    pass
