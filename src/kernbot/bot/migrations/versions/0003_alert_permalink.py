"""An alert keeps its message's Slack permalink, so an OOM-risk warning and its kill alert can
link to each other (issue 13: the warning "points to the kill alert").

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kernbot_alerts") as batch:
        batch.add_column(sa.Column("ref_permalink", sa.String(1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kernbot_alerts") as batch:
        batch.drop_column("ref_permalink")
