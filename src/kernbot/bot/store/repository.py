"""Queries and writes over one session: the only place that knows the tables' shape.

Every method works inside the caller's transaction (see `Database.transaction`), so a caller can
insert an event, decide its alert and enqueue the notification atomically.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kernbot.bot.store.models import AgentRow, AlertRow, EventRow, OutboxRow, SilenceRow

_EVENTS = cast(Table, EventRow.__table__)
_OUTBOX = cast(Table, OutboxRow.__table__)


class Repository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._postgres = session.get_bind().dialect.name == "postgresql"

    # events -------------------------------------------------------------------------------
    def events_by_keys(self, keys: set[str]) -> dict[str, EventRow]:
        if not keys:
            return {}
        rows = self.session.scalars(select(EventRow).where(EventRow.key.in_(keys)))
        return {r.key: r for r in rows}

    def insert_events(self, rows: list[dict[str, Any]]) -> None:
        """Bulk insert (one executemany); rows whose key exists are skipped. Core on the table,
        not the ORM's bulk path: these rows never become objects in the session, and the ORM's
        per-row bookkeeping cost more than the insert itself."""
        if rows:
            ins = (postgresql.insert if self._postgres else sqlite.insert)(_EVENTS)
            self.session.execute(ins.on_conflict_do_nothing(index_elements=["key"]), rows)

    def get_event(self, key: str) -> EventRow | None:
        return self.session.scalars(select(EventRow).where(EventRow.key == key)).first()

    def recent_events(self, host: str, kind: str, limit: int = 20) -> list[EventRow]:
        stmt = (
            select(EventRow)
            .where(EventRow.host == host, EventRow.kind == kind)
            .order_by(EventRow.received_at.desc())
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def count_events(
        self,
        kind: str,
        since: float,
        *,
        host: str | None = None,
        namespace: str | None = None,
        pod: str | None = None,
    ) -> int:
        stmt = select(func.count()).select_from(EventRow)
        stmt = stmt.where(EventRow.kind == kind, EventRow.received_at >= since)
        if host is not None:
            stmt = stmt.where(EventRow.host == host)
        if pod is not None:
            stmt = stmt.where(EventRow.namespace == namespace, EventRow.pod == pod)
        return int(self.session.scalar(stmt) or 0)

    def kill_groups(
        self, since: float
    ) -> list[tuple[str, str | None, str | None, str | None, int]]:
        """(host, namespace, pod, victim comm, kills) since `since`, biggest first."""
        stmt = (
            select(EventRow.host, EventRow.namespace, EventRow.pod, EventRow.subject, func.count())
            .where(EventRow.kind == "oom_kill", EventRow.received_at >= since)
            .group_by(EventRow.host, EventRow.namespace, EventRow.pod, EventRow.subject)
            .order_by(func.count().desc())
        )
        return [(h, ns, p, s, int(n)) for h, ns, p, s, n in self.session.execute(stmt)]

    # alerts -------------------------------------------------------------------------------
    def add(self, row: AlertRow | SilenceRow | OutboxRow) -> None:
        self.session.add(row)
        self.session.flush()

    def get_alert(self, alert_id: int) -> AlertRow | None:
        return self.session.get(AlertRow, alert_id)

    def open_alert(self, kind: str, group_key: str, since: float) -> AlertRow | None:
        stmt = (
            select(AlertRow)
            .where(AlertRow.kind == kind, AlertRow.group_key == group_key)
            .where(AlertRow.last_at >= since)
            .order_by(AlertRow.last_at.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    def open_alerts(self, kind: str, group_keys: set[str], since: float) -> dict[str, AlertRow]:
        """The newest alert per group key still inside its window."""
        if not group_keys:
            return {}
        stmt = (
            select(AlertRow)
            .where(AlertRow.kind == kind, AlertRow.group_key.in_(group_keys))
            .where(AlertRow.last_at >= since)
            .order_by(AlertRow.last_at)
        )
        return {a.group_key: a for a in self.session.scalars(stmt)}

    def alert_hosts_since(self, since: float) -> set[str]:
        stmt = select(AlertRow.host).where(AlertRow.kind == "event", AlertRow.created_at >= since)
        return {h for h in self.session.scalars(stmt) if h}

    # outbox -------------------------------------------------------------------------------
    def enqueue(
        self,
        op: str,
        now: float,
        *,
        alert_id: int | None = None,
        event_key: str | None = None,
        channel: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> OutboxRow:
        row = OutboxRow(
            op=op,
            alert_id=alert_id,
            event_key=event_key,
            channel=channel,
            payload=payload,
            status="pending",
            attempts=0,
            next_at=now,
            created_at=now,
        )
        self.add(row)
        return row

    def enqueue_many(self, rows: list[dict[str, Any]], now: float) -> None:
        """Bulk-queue notifications, in order (ids follow the list)."""
        if rows:
            full = [
                {"next_at": now, **r, "status": "pending", "attempts": 0, "created_at": now}
                for r in rows
            ]
            self.session.execute(insert(_OUTBOX), full)

    def has_waiting(self, alert_id: int, ops: tuple[str, ...], now: float) -> bool:
        """A not-yet-claimed row would render the alert's newest state anyway."""
        return alert_id in self.waiting_alerts({alert_id}, ops, now)

    def waiting_alerts(self, alert_ids: set[int], ops: tuple[str, ...], now: float) -> set[int]:
        """Those of `alert_ids` with a pending, unclaimed row of one of `ops`."""
        if not alert_ids:
            return set()
        stmt = (
            select(OutboxRow.alert_id)
            .distinct()
            .where(
                OutboxRow.alert_id.in_(alert_ids),
                OutboxRow.op.in_(ops),
                OutboxRow.status == "pending",
                (OutboxRow.claimed_until.is_(None)) | (OutboxRow.claimed_until < now),
            )
        )
        return {i for i in self.session.scalars(stmt) if i is not None}

    def claim(self, now: float, limit: int, lease_s: float) -> list[OutboxRow]:
        """Due rows, locked against other replicas, leased for `lease_s`."""
        stmt = (
            select(OutboxRow)
            .where(OutboxRow.status == "pending", OutboxRow.next_at <= now)
            .where((OutboxRow.claimed_until.is_(None)) | (OutboxRow.claimed_until < now))
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        if self._postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        rows = list(self.session.scalars(stmt))
        for row in rows:
            row.claimed_until = now + lease_s
            row.attempts += 1
        self.session.flush()
        return rows

    def get_outbox(self, row_id: int) -> OutboxRow | None:
        return self.session.get(OutboxRow, row_id)

    def outbox_counts(self) -> dict[str, int]:
        stmt = select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
        return {status: int(n) for status, n in self.session.execute(stmt)}

    def failed_outbox(self, limit: int = 5) -> list[OutboxRow]:
        stmt = (
            select(OutboxRow)
            .where(OutboxRow.status == "failed")
            .order_by(OutboxRow.id.desc())
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    # silences -----------------------------------------------------------------------------
    def active_silences(self, now: float) -> list[SilenceRow]:
        return list(self.session.scalars(select(SilenceRow).where(SilenceRow.until > now)))

    # agents -------------------------------------------------------------------------------
    def get_agent(self, host: str, *, for_update: bool = False) -> AgentRow | None:
        stmt = select(AgentRow).where(AgentRow.host == host)
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).first()

    def insert_agent(self, values: dict[str, Any]) -> bool:
        ins = (postgresql.insert if self._postgres else sqlite.insert)(AgentRow)
        stmt = ins.values(**values).on_conflict_do_nothing(index_elements=["host"])
        return self.session.execute(stmt.returning(AgentRow.host)).first() is not None

    def agents(self) -> list[AgentRow]:
        return list(self.session.scalars(select(AgentRow).order_by(AgentRow.host)))

    def mark_stale(self, cutoff: float) -> list[str]:
        """Flip agents silent since before `cutoff` to stale; returns the hosts flipped now.
        The conditional UPDATE makes the flip happen once, whichever replica runs it."""
        stmt = (
            update(AgentRow)
            .where(AgentRow.stale.is_(False), AgentRow.last_seen < cutoff)
            .values(stale=True)
            .returning(AgentRow.host)
        )
        return sorted(self.session.scalars(stmt))

    def post_state(self, alert_id: int) -> tuple[str | None, float | None]:
        """Status and due time of the row that posts an alert's parent (None, None if none)."""
        stmt = select(OutboxRow.status, OutboxRow.next_at).where(
            OutboxRow.alert_id == alert_id, OutboxRow.op == "post"
        )
        row = self.session.execute(stmt.limit(1)).first()
        return (row[0], row[1]) if row else (None, None)

    def event_keys_since(self, kind: str, since: float) -> set[str]:
        stmt = select(EventRow.key).where(EventRow.kind == kind, EventRow.received_at >= since)
        return set(self.session.scalars(stmt))

    def prune(self, events_before: float, outbox_before: float) -> dict[str, int]:
        """Forget old events, closed alerts and finished notifications (retention)."""
        stmts = {
            "events": delete(EventRow).where(EventRow.received_at < events_before),
            "alerts": delete(AlertRow).where(AlertRow.last_at < events_before),
            "outbox": delete(OutboxRow).where(
                OutboxRow.status.in_(("sent", "failed")), OutboxRow.created_at < outbox_before
            ),
        }
        gone = {}
        for name, stmt in stmts.items():
            result = self.session.execute(stmt)
            # A DELETE returns a CursorResult; the generic Result type does not show rowcount.
            gone[name] = int(getattr(result, "rowcount", 0) or 0)
        return gone
