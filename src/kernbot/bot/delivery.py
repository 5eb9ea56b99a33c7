"""The outbox worker: turns queued notifications into Slack calls, and never loses one.

Rows are claimed in a short transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas
share the work without both sending a row; BEGIN IMMEDIATE on SQLite) and leased; the Slack call
happens outside any transaction; the result is written back. A transient failure (429 with
Retry-After, 5xx, timeouts, connection errors) reschedules the row; a permanent one
(invalid_auth, channel_not_found) marks it failed, logs loudly and shows on /healthz.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from kernbot.bot.ports import AlertView, DeliveryError, Message, Notice, Notifier, PostedRef
from kernbot.bot.recurrence import store_recurrence
from kernbot.bot.render import render_alert, render_notice, render_thread_reply
from kernbot.bot.store import Database, Repository
from kernbot.bot.store.models import AlertRow, OutboxRow
from kernbot.core.events import Event, OomKillEvent, OomRiskEvent

log = logging.getLogger(__name__)
DAY_S = 86400.0


@dataclass
class DeliveryHealth:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    last_ok_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    permanent_error: str | None = None
    """Set by invalid_auth / channel_not_found...; cleared by the next success."""
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    """Seconds from enqueue to a successful call, last 1000 (for /metrics and benchmarks)."""


@dataclass(slots=True)
class _Send:
    """A prepared call: what to send where, decided from the store."""

    row_id: int
    op: str
    message: Message
    channel: str | None = None
    thread: PostedRef | None = None
    update: PostedRef | None = None
    alert_id: int | None = None
    created_at: float = 0.0


@dataclass(slots=True)
class _Skip:
    row_id: int
    defer_s: float | None
    """None: nothing left to do (done); a number: try again that much later."""
    error: str | None = None


def _ref(alert: AlertRow) -> PostedRef | None:
    if alert.ref_ts and alert.ref_channel:
        return PostedRef(channel=alert.ref_channel, ts=alert.ref_ts, permalink=alert.ref_permalink)
    return None


def storm_notice(alert: AlertRow) -> Notice:
    """The one message that counts a host's (or the fleet's) alerts past the per-minute cap."""
    who = alert.host or "the fleet"
    events = "1 more event" if alert.count == 1 else f"{alert.count} more events"
    return Notice(
        kind="storm",
        title=f"Alert storm from {who}: {events} not posted one by one",
        lines=[
            "more new alerts per minute than KERNBOT_HOST_ALERTS_PER_MIN allows"
            + (" for one host" if alert.host else " across the fleet")
            + "; this message keeps the count. Every event is stored: `/oom HOST` shows them"
        ],
        hosts=list(alert.hosts),
    )


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        notifier: Notifier,
        *,
        clock: Callable[[], float] = time.time,
        batch: int = 20,
        lease_s: float = 60.0,
        poll_s: float = 0.25,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 300.0,
        burst_window_s: float = 60.0,
    ) -> None:
        self.db = db
        self.notifier = notifier
        self.clock = clock
        self.batch = batch
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.burst_window_s = burst_window_s
        self.health = DeliveryHealth()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                busy = await self.drain_once()
            except Exception:
                log.exception("delivery: outbox pass failed; retrying")
                busy = 0
            if busy:
                continue
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that
            # arrives as `_wake` is set (cpython gh-86296), and stop() then waits forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()

    async def drain_once(self) -> int:
        """Claim due rows and deliver them in order; returns how many were claimed and not
        merely deferred (so the run loop sleeps instead of spinning on waiting replies)."""
        now = self.clock()
        jobs = await self.db.run(lambda s: self._claim_and_prepare(s, now))
        skips = [j for j in jobs if isinstance(j, _Skip)]
        sent: list[tuple[_Send, PostedRef, float]] = []
        rest: list[int] = []
        delay: float | None = None
        for i, job in enumerate(jobs):
            if isinstance(job, _Skip):
                continue
            outcome = await self._send(job)
            if isinstance(outcome, PostedRef):
                sent.append((job, outcome, self.clock()))
                if job.op == "post":  # its replies may be next: record the ref now
                    write = functools.partial(self._finish, sent=sent, skips=skips, rest=[])
                    await self.db.run(write)
                    sent, skips = [], []
            elif outcome is not None:  # rate limited: everything after waits too
                delay = outcome
                rest = [j.row_id for j in jobs[i + 1 :] if isinstance(j, _Send)]
                break
        if sent or skips or rest:
            write = functools.partial(
                self._finish, sent=sent, skips=skips, rest=rest, delay=delay or 0.0
            )
            await self.db.run(write)
        return sum(1 for j in jobs if not (isinstance(j, _Skip) and j.defer_s is not None))

    def _finish(
        self,
        session: Session,
        sent: list[tuple[_Send, PostedRef, float]],
        skips: list[_Skip],
        rest: list[int],
        delay: float = 0.0,
    ) -> None:
        """Write back a pass's results in one transaction."""
        for job, ref, at in sent:
            self._mark_sent(session, job, ref, at)
        for skip in skips:
            self._finish_skip(session, skip)
        if rest:
            self._release(session, rest, delay)

    # -- preparing ---------------------------------------------------------------------------
    def _claim_and_prepare(self, session: Session, now: float) -> list[_Send | _Skip]:
        repo = Repository(session)
        jobs: list[_Send | _Skip] = []
        for row in repo.claim(now, self.batch, self.lease_s):
            try:
                jobs.append(self._prepare(repo, row, now))
            except Exception as exc:  # bad stored data must not block the queue
                log.exception("delivery: cannot prepare notification %d", row.id)
                jobs.append(_Skip(row.id, None, f"{type(exc).__name__}: {exc}"))
        return jobs

    def _prepare(self, repo: Repository, row: OutboxRow, now: float) -> _Send | _Skip:
        if row.op == "notice":
            notice = Notice.model_validate(row.payload or {})
            return _Send(
                row.id,
                row.op,
                render_notice(notice),
                channel=row.channel,
                created_at=row.created_at,
            )
        alert = repo.get_alert(row.alert_id) if row.alert_id is not None else None
        if alert is None:
            return _Skip(row.id, None, f"alert {row.alert_id} is gone")
        ref = _ref(alert)
        if row.op == "post":
            if ref is not None:
                return _Skip(row.id, None)  # posted already (a lease expired mid-call)
            return _Send(
                row.id,
                row.op,
                self._parent(repo, alert, now),
                channel=alert.channel,
                alert_id=alert.id,
                created_at=row.created_at,
            )
        if ref is None:  # the parent is not posted yet: wait for it unless it failed for good
            status, due = repo.post_state(alert.id)
            if status == "failed":
                return _Skip(row.id, None, "the alert it belongs to could not be posted")
            return _Skip(row.id, max(self.poll_s, (due or now) - now))
        if row.op == "update":
            return _Send(
                row.id,
                row.op,
                self._parent(repo, alert, now),
                update=ref,
                alert_id=alert.id,
                created_at=row.created_at,
            )
        event_row = repo.get_event(row.event_key or "")
        if event_row is None:
            return _Skip(row.id, None, f"event {row.event_key} is gone")
        view = self._view(repo, alert, event_row.event(), now)
        return _Send(
            row.id,
            row.op,
            render_thread_reply(view),
            channel=ref.channel,
            thread=ref,
            created_at=row.created_at,
        )

    def _parent(self, repo: Repository, alert: AlertRow, now: float) -> Message:
        if alert.kind == "burst":
            notice = Notice(
                kind="fleet_burst",
                title=f"{len(alert.hosts)} hosts alerting at once",
                lines=[
                    f"{alert.count} events since the burst began; individual alerts are held "
                    f"back until {self.burst_window_s:g}s pass without a new one",
                ],
                hosts=list(alert.hosts),
            )
            return render_notice(notice)
        if alert.kind == "storm":
            return render_notice(storm_notice(alert))
        event_row = repo.get_event(alert.event_key or "")
        if event_row is None:
            raise LookupError(f"event {alert.event_key} of alert {alert.id} is gone")
        return render_alert(self._view(repo, alert, event_row.event(), now))

    def _view(self, repo: Repository, alert: AlertRow, event: Event, now: float) -> AlertView:
        host_kills = pod_kills = None
        if isinstance(event, OomKillEvent) and event.context.recurrence is None:
            again = store_recurrence(repo, event, now)
            if again is not None:
                event = event.model_copy(deep=True)
                event.context.recurrence = again
        if event.kind == "oom_kill":
            host_kills = repo.count_events("oom_kill", now - DAY_S, host=event.host or "")
            k8s = event.kubernetes
            if k8s and k8s.pod:
                pod_kills = repo.count_events(
                    "oom_kill", now - DAY_S, namespace=k8s.namespace, pod=k8s.pod
                )
        return AlertView(
            event=event,
            repeat_count=alert.count,
            kills_24h_host=host_kills,
            kills_24h_pod=pod_kills,
            related=self._related(repo, event),
        )

    @staticmethod
    def _related(repo: Repository, event: Event) -> PostedRef | None:
        """Where the alert an OOM-risk warning and its kill point at each other was posted."""
        other = None
        if isinstance(event, OomRiskEvent):
            other = event.kill_id
        elif isinstance(event, OomKillEvent):
            other = event.risk_id
        if not other:
            return None
        row = repo.get_event(f"{event.host}/{other}")
        if row is None or row.alert_id is None:
            return None
        alert = repo.get_alert(row.alert_id)
        return _ref(alert) if alert is not None and alert.kind == "event" else None

    # -- sending -----------------------------------------------------------------------------
    async def _send(self, job: _Send) -> PostedRef | float | None:
        """Deliver one job: its ref when done, a delay when the service asked everyone to wait,
        None when it failed (already rescheduled or marked failed)."""
        try:
            if job.update is not None:
                await self.notifier.update(job.update, job.message)
                ref = job.update
            else:
                ref = await self.notifier.post(job.channel, job.message, job.thread)
        except DeliveryError as exc:
            return await self._failed(job, exc.code, exc.permanent, exc.retry_after)
        except (TimeoutError, OSError) as exc:
            return await self._failed(job, f"{type(exc).__name__}: {exc}", False, None)
        except Exception as exc:  # a notifier bug must not stop the worker
            log.exception("delivery: notifier %s raised", self.notifier.name)
            return await self._failed(job, f"{type(exc).__name__}: {exc}", False, None)
        now = self.clock()
        self.health.delivered += 1
        self.health.last_ok_at = now
        self.health.permanent_error = None
        self.health.latencies.append(now - job.created_at)
        return ref

    async def _failed(
        self, job: _Send, code: str, permanent: bool, retry_after: float | None
    ) -> float | None:
        now = self.clock()
        self.health.last_error, self.health.last_error_at = code, now
        if permanent:
            self.health.failed += 1
            self.health.permanent_error = code
            log.error(
                "delivery: %s FAILED for good (%s): notification %d dropped from the queue; "
                "fix the Slack settings",
                self.notifier.name,
                code,
                job.row_id,
            )
            await self.db.run(lambda s: self._mark_failed(s, job.row_id, code))
            return None
        self.health.retried += 1

        def _reschedule(session: Session) -> float:
            row = Repository(session).get_outbox(job.row_id)
            assert row is not None
            delay = retry_after
            if delay is None:
                delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** max(0, row.attempts - 1))
                delay *= 1 + random.random() * 0.1
            row.next_at, row.claimed_until, row.last_error = now + delay, None, code
            return delay

        delay = await self.db.run(_reschedule)
        log.warning("delivery: %s: %s; retrying in %.1fs", self.notifier.name, code, delay)
        return retry_after

    def _mark_sent(self, session: Session, job: _Send, ref: PostedRef, now: float) -> None:
        repo = Repository(session)
        row = repo.get_outbox(job.row_id)
        if row is not None:
            row.status, row.sent_at, row.claimed_until = "sent", now, None
        if job.op == "post" and job.alert_id is not None:
            alert = repo.get_alert(job.alert_id)
            if alert is not None:
                alert.ref_channel, alert.ref_ts = ref.channel, ref.ts
                alert.ref_permalink = (ref.permalink or "")[:1000] or None

    def _mark_failed(self, session: Session, row_id: int, code: str) -> None:
        row = Repository(session).get_outbox(row_id)
        if row is not None:
            row.status, row.last_error, row.claimed_until = "failed", code, None

    def _finish_skip(self, session: Session, job: _Skip) -> None:
        row = Repository(session).get_outbox(job.row_id)
        if row is None:
            return
        if job.defer_s is None:
            row.status = "failed" if job.error else "sent"
            row.last_error = job.error
        else:
            row.next_at = self.clock() + job.defer_s
            row.attempts = max(0, row.attempts - 1)
        row.claimed_until = None

    def _release(self, session: Session, row_ids: list[int], delay: float) -> None:
        repo = Repository(session)
        until = self.clock() + delay
        for row_id in row_ids:
            row = repo.get_outbox(row_id)
            if row is not None:
                row.next_at, row.claimed_until = until, None
                row.attempts = max(0, row.attempts - 1)
