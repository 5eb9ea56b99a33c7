"""Visible, reversible silences and 64-bit revisions (issue 8).

Silences gain a reason, an early end (`/kernbot unsilence`) and whether their end was announced
in the channel. Event revisions and alert counts become BIGINT: the wire allows any int64
revision, and PostgreSQL's INTEGER would refuse one above 2^31 with an error (HTTP 500).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kernbot_silences") as batch:
        batch.add_column(sa.Column("reason", sa.String(300), nullable=True))
        batch.add_column(sa.Column("ended_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("ended_by", sa.String(255), nullable=True))
        batch.add_column(
            sa.Column("reported", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("kernbot_events") as batch:
        batch.alter_column("revision", type_=sa.BigInteger(), existing_nullable=False)
    with op.batch_alter_table("kernbot_alerts") as batch:
        batch.alter_column("count", type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("kernbot_alerts") as batch:
        batch.alter_column("count", type_=sa.Integer(), existing_nullable=False)
    with op.batch_alter_table("kernbot_events") as batch:
        batch.alter_column("revision", type_=sa.Integer(), existing_nullable=False)
    with op.batch_alter_table("kernbot_silences") as batch:
        for name in ("reported", "ended_by", "ended_at", "reason"):
            batch.drop_column(name)
