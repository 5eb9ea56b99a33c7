"""Table definitions. The Alembic migrations in `kernbot.bot.migrations` create exactly these
(a test compares them), so the schema has one source of truth per version.

Times are float epoch seconds: comparable on SQLite and PostgreSQL alike, and cheap to index.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false

from kernbot.core.events import Event

_EVENT = TypeAdapter[Event](Event)


class Base(DeclarativeBase):
    pass


class EventRow(Base):
    """One event, deduplicated by `key` (host + the agent's idempotency id); newest revision."""

    __tablename__ = "kernbot_events"

    key: Mapped[str] = mapped_column(String(600), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(255))
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    time: Mapped[str | None] = mapped_column(String(64), nullable=True)
    received_at: Mapped[float] = mapped_column(Float)
    namespace: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pod: Mapped[str | None] = mapped_column(String(255), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    """What the event is about: the victim comm (OOM) or `port N` (SYN)."""
    history: Mapped[bool] = mapped_column(Boolean, default=False)
    alert_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_kernbot_events_host_received", "host", "received_at"),
        Index("ix_kernbot_events_received", "received_at"),
    )

    def event(self) -> Event:
        """The stored document as the Event it was written from."""
        return _EVENT.validate_python(self.data)


class AgentRow(Base):
    """The agent registry, fed by heartbeats."""

    __tablename__ = "kernbot_agents"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    advertise_url: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    agent_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kernel: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_seen: Mapped[float] = mapped_column(Float)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    def is_stale(self, now: float, stale_after_s: float) -> bool:
        """Flagged by the stale job, or already silent that long before the job next runs."""
        return self.stale or self.last_seen < now - stale_after_s


class AlertRow(Base):
    """One posted parent message: an event alert (storm group) or a fleet-burst summary."""

    __tablename__ = "kernbot_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    """`event` or `burst`."""
    group_key: Mapped[str] = mapped_column(String(800))
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(255), nullable=True)
    event_key: Mapped[str | None] = mapped_column(String(600), nullable=True)
    """The event the parent message shows."""
    count: Mapped[int] = mapped_column(BigInteger, default=1)
    hosts: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[float] = mapped_column(Float)
    last_at: Mapped[float] = mapped_column(Float)
    ref_channel: Mapped[str | None] = mapped_column(String(255), nullable=True)
    ref_ts: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ref_permalink: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    """The posted message's Slack permalink, when Slack gave one."""

    __table_args__ = (
        Index("ix_kernbot_alerts_group_last", "group_key", "last_at"),
        Index("ix_kernbot_alerts_created", "created_at"),
    )


class OutboxRow(Base):
    """A notification still to deliver (or delivered / failed for good, kept for health)."""

    __tablename__ = "kernbot_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    op: Mapped[str] = mapped_column(String(16))
    """`post` / `update` (an alert's parent), `reply` (a repeat into its thread), `notice`."""
    alert_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    event_key: Mapped[str | None] = mapped_column(String(600), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(255), nullable=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[float] = mapped_column(Float)
    claimed_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (
        Index("ix_kernbot_outbox_status_next", "status", "next_at"),
        Index("ix_kernbot_outbox_alert", "alert_id"),
    )


class SilenceRow(Base):
    __tablename__ = "kernbot_silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(600))
    until: Mapped[float] = mapped_column(Float)
    by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    """Set when someone ended it early (`/kernbot unsilence`)."""
    ended_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reported: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Its end was announced in the channel with the number of alerts it held back."""

    def end(self) -> float:
        return min(self.until, self.ended_at) if self.ended_at is not None else self.until
