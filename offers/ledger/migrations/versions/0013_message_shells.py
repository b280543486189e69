"""A decision's message is kept as its wording's shell plus the customer's name.

Texts of one incident step take a few hundred shapes: the shell (the text with a mark where
the name and the perk code go) is stored once per wording in `decision_reasons`, and a
decision row keeps only `first_name`, its `text` NULL; readers splice the code and then the
name into the shell. A million-customer incident writes about 160 bytes less per row. Rows
written before keep their own text, which readers prefer.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The marks of offers.messages.rendering as this revision wrote them.
NAME_MARK = "\ue000"
CODE_MARK = "\ue001"


def upgrade() -> None:
    with op.batch_alter_table("decision_reasons") as batch:
        batch.add_column(sa.Column("text_shell", sa.Text))
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("first_name", sa.Text))


def downgrade() -> None:
    """Each row written since gets its text back before the shells and names go."""
    op.execute(
        sa.text(
            "UPDATE decisions SET text = (SELECT replace(replace(w.text_shell, :code,"
            " coalesce(decisions.perk_code, '')), :name, coalesce(decisions.first_name, ''))"
            " FROM decision_reasons w"
            " WHERE w.incident_id = decisions.incident_id AND w.reason_id = decisions.reason_id)"
            " WHERE text IS NULL AND reason_id IS NOT NULL"
        ).bindparams(code=CODE_MARK, name=NAME_MARK)
    )
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("first_name")
    with op.batch_alter_table("decision_reasons") as batch:
        batch.drop_column("text_shell")
