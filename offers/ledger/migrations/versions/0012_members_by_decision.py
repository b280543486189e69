"""An incident's customers are found by their decisions; incident_customers keeps the rest.

Every update past the notice threshold decides everyone affected who lacks a decision, so
a customer with a decision in an incident is one of its customers: writing them into
incident_customers as well doubled the rows of a million-customer step. Only customers
named while nobody is decided go there now, and `incidents.customers` keeps the count.
Rows written before stay (a customer found both ways counts once).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("customers", sa.Integer, nullable=False, server_default="0"))
    op.execute(
        "UPDATE incidents SET customers = (SELECT count(*) FROM (SELECT customer_id"
        " FROM incident_customers c WHERE c.incident_id = incidents.incident_id UNION"
        " SELECT customer_id FROM decisions d WHERE d.incident_id = incidents.incident_id) u)"
    )


def downgrade() -> None:
    """Every customer is listed in incident_customers again, as before."""
    op.execute(
        "INSERT INTO incident_customers (incident_id, customer_id)"
        " SELECT DISTINCT d.incident_id, d.customer_id FROM decisions d WHERE NOT EXISTS"
        " (SELECT 1 FROM incident_customers c WHERE c.incident_id = d.incident_id"
        " AND c.customer_id = d.customer_id)"
    )
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("customers")
