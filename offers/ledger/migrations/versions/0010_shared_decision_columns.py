"""Decision columns that are the same for every customer of one wording are stored with it.

Segment description, perk title, value, currency and validity are fixed by the wording
(segment, perk and language, step), so `decision_reasons` keeps them once and a
million-customer incident writes about 100 bytes less per decision row. Rows written
before keep their own values; readers take the row's value where it has one.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_SHARED: dict[str, Any] = {
    "segment_description": sa.String(256),
    "perk_title": sa.String(256),
    "perk_value": sa.Float(),
    "currency": sa.String(3),
    "valid_until": sa.Date(),
}


def upgrade() -> None:
    with op.batch_alter_table("decision_reasons") as batch:
        for name, type_ in _SHARED.items():
            batch.add_column(sa.Column(name, type_))


def downgrade() -> None:
    """Each row gets its wording's values back before the wording loses them."""
    for name in _SHARED:
        op.execute(
            f"UPDATE decisions SET {name} = (SELECT w.{name} FROM decision_reasons w"
            " WHERE w.incident_id = decisions.incident_id AND w.reason_id = decisions.reason_id)"
            f" WHERE {name} IS NULL AND reason_id IS NOT NULL"
        )
    with op.batch_alter_table("decision_reasons") as batch:
        for name in reversed(_SHARED):
            batch.drop_column(name)
