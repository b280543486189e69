"""Each offer-table version records the incident kinds it serves.

A table now lists its incident kinds (`incidents = [...]`), and each kind is served by the
newest published table that lists it: a late parcel is no longer answered from the flight
table. Versions published before this say nothing, and were written for flights: they serve
the flight kinds (delay, cancellation, missed connection). Other kinds get their shipped
tables at the next start, where those fit the data.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

FLIGHT_INCIDENTS = "flight_delay,cancellation,missed_connection"


def upgrade() -> None:
    with op.batch_alter_table("offer_tables") as batch:
        batch.add_column(
            sa.Column("incidents", sa.String(200), nullable=False, server_default=FLIGHT_INCIDENTS)
        )


def downgrade() -> None:
    with op.batch_alter_table("offer_tables") as batch:
        batch.drop_column("incidents")
