"""Initial schema: events, agents, alerts, outbox, silences.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kernbot_events",
        sa.Column("key", sa.String(600), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("time", sa.String(64), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("namespace", sa.String(255), nullable=True),
        sa.Column("pod", sa.String(255), nullable=True),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("history", sa.Boolean(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_kernbot_events_host_received", "kernbot_events", ["host", "received_at"])
    op.create_index("ix_kernbot_events_received", "kernbot_events", ["received_at"])
    op.create_table(
        "kernbot_agents",
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("advertise_url", sa.String(1024), nullable=True),
        sa.Column("agent_version", sa.String(64), nullable=True),
        sa.Column("kernel", sa.String(255), nullable=True),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_table(
        "kernbot_alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("group_key", sa.String(800), nullable=False),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("channel", sa.String(255), nullable=True),
        sa.Column("event_key", sa.String(600), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=False),
        sa.Column("ref_channel", sa.String(255), nullable=True),
        sa.Column("ref_ts", sa.String(64), nullable=True),
    )
    op.create_index("ix_kernbot_alerts_group_last", "kernbot_alerts", ["group_key", "last_at"])
    op.create_index("ix_kernbot_alerts_created", "kernbot_alerts", ["created_at"])
    op.create_table(
        "kernbot_outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("event_key", sa.String(600), nullable=True),
        sa.Column("channel", sa.String(255), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("claimed_until", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_kernbot_outbox_status_next", "kernbot_outbox", ["status", "next_at"])
    op.create_index("ix_kernbot_outbox_alert", "kernbot_outbox", ["alert_id"])
    op.create_table(
        "kernbot_silences",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("target", sa.String(600), nullable=False),
        sa.Column("until", sa.Float(), nullable=False),
        sa.Column("by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "kernbot_silences",
        "kernbot_outbox",
        "kernbot_alerts",
        "kernbot_agents",
        "kernbot_events",
    ):
        op.drop_table(table)
