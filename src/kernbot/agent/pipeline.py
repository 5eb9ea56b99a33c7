"""The agent's data path: source batches -> detector -> (SYN episodes) -> enrichment -> store.

Every event is written to the history and the outbox before anyone is told about it. Old events
(the ring buffer found on first start, or older than `history_max_age_s`) are stored and shipped
with `history = True`, which tells the bot to keep them without alerting. The position
to resume from only advances while no report is half assembled, so a restart re-reads whole
reports; the outbox drops what was already sent (same id and revision).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from kernbot.agent.history import History, RecentLines, event_epoch
from kernbot.agent.metrics import AgentMetrics
from kernbot.agent.outbox import Outbox
from kernbot.agent.position import Position
from kernbot.agent.sources import Batch
from kernbot.core.events import Event, OomKillEvent, SynFloodEvent
from kernbot.core.oom.reconcile import OomReconciler
from kernbot.core.prefilter import KEYWORDS
from kernbot.core.record import Record

log = logging.getLogger(__name__)

_KEYWORDS = tuple(k.decode() for k in KEYWORDS)


def may_hold_event(text: str) -> bool:
    """Cheap test before the full parse (the idea of `kernbot.core.prefilter`): a record without
    any of these keywords cannot start an OOM report or a SYN flood event."""
    return any(k in text for k in _KEYWORDS)


class EventDetector(Protocol):
    @property
    def pending(self) -> bool: ...
    def feed(self, rec: Record) -> list[Event]: ...
    def flush(self) -> list[Event]: ...


class SynTracker(Protocol):
    def on_kernel_event(self, ev: SynFloodEvent, now: float) -> list[SynFloodEvent]: ...


@dataclass
class Stats:
    records_read: int = 0
    records_lost: int = 0
    records_garbled: int = 0
    events: Counter[str] = field(default_factory=Counter)


class Pipeline:
    def __init__(
        self,
        *,
        detector: EventDetector,
        outbox: Outbox,
        history: History,
        recent: RecentLines,
        metrics: AgentMetrics,
        reconciler: OomReconciler | None,
        enrich: Callable[[Event], Event] = lambda ev: ev,
        syn: SynTracker | None = None,
        on_stored: Callable[[], None] = lambda: None,
        on_live: Callable[[Event], None] = lambda ev: None,
        first_start: bool = False,
        history_max_age_s: float = 86400.0,
        boot_id: str | None = None,
        wall_clock: Callable[[], float] = time.time,
        mono_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.detector = detector
        self.outbox = outbox
        self.history = history
        self.recent = recent
        self.metrics = metrics
        self.reconciler = reconciler
        self.enrich = enrich
        self.syn = syn
        self.on_stored = on_stored
        self.on_live = on_live
        """Called with each live (not history) event as shipped, after it is in the outbox."""
        self.first_start = first_start
        self.history_max_age_s = history_max_age_s
        self.boot_id = boot_id
        self.wall_clock = wall_clock
        self.mono_clock = mono_clock
        self.started_at = wall_clock()
        self.stats = Stats()
        self.safe_position: Position | None = None
        """Where a restart should resume: after the last record that left no half-read report."""
        self.last_record_mono = mono_clock()
        self._latest_position: Position | None = None
        self._revisions: dict[str, int] = {}
        """Highest revision shipped per event id: an update made here (pod names from the
        Kubernetes API) and a later one from the detector (the reaper line) never share one."""
        self._counted_ids: set[str] = set()

    def feed(self, batch: Batch) -> None:
        items = batch.items
        texts = [rec.text for item in items for rec in item.records]
        self.stats.records_read += len(texts)
        self.recent.extend(texts)
        if self.detector.pending or may_hold_event("\n".join(texts)):
            self._detect(batch)
        elif items:
            # Nothing in this batch can start or continue a report: the detector would return
            # no events and stay idle, so skip it and only move the position.
            last = next((i.position for i in reversed(items) if i.position is not None), None)
            if last is not None:
                self._latest_position = last
                self._advance(last)
        if items:
            self.last_record_mono = self.mono_clock()
            self.metrics.records_read.inc(len(texts))
        if batch.lost:
            self.stats.records_lost += batch.lost
            self.metrics.records_lost.inc(batch.lost)
            log.warning("%d kernel log records were overwritten before they were read", batch.lost)
        if batch.garbled:
            self.stats.records_garbled += batch.garbled
            self.metrics.records_garbled.inc(batch.garbled)

    def _detect(self, batch: Batch) -> None:
        old = batch.backlog and self.first_start
        for item in batch.items:
            for rec in item.records:
                for ev in self.detector.feed(rec):
                    self.emit(ev, old=old)
            if item.position is not None:
                self._latest_position = item.position
                if not self.detector.pending:
                    self._advance(item.position)

    def flush_if_idle(self, timeout_s: float) -> None:
        """Emit a report that stopped arriving (truncated, or the rest was never printed)."""
        if self.detector.pending and self.mono_clock() - self.last_record_mono >= timeout_s:
            self.flush()

    def flush(self) -> None:
        for ev in self.detector.flush():
            self.emit(ev, old=False)
        if self._latest_position is not None:
            self._advance(self._latest_position)

    def _advance(self, pos: Position) -> None:
        if self.reconciler is not None:
            pos.oom_kills_accounted = self.reconciler.accounted
        self.safe_position = pos

    def _fill_time(self, ev: Event) -> None:
        """kmsg records carry only boot-relative time; derive wall time for this boot's events."""
        if ev.time is not None or ev.mono_usec is None or ev.boot_id != self.boot_id:
            return
        if ev.boot_id is None:
            return
        now_mono = time.clock_gettime(time.CLOCK_MONOTONIC)
        at = self.wall_clock() - (now_mono - ev.mono_usec / 1e6)
        ev.time = datetime.fromtimestamp(at, UTC).isoformat()

    def emit(self, ev: Event, old: bool) -> None:
        self._fill_time(ev)
        at = event_epoch({"time": ev.time})
        if old and at is not None and at >= self.started_at:
            # Read with the first start's backlog but printed after the agent started (a slow
            # backlog read races the kernel): it is live, not history.
            old = False
        too_old = at is not None and self.wall_clock() - at > self.history_max_age_s
        old = old or too_old or (isinstance(ev, OomKillEvent) and ev.context.before_first_start)
        events: list[Event] = [ev]
        if isinstance(ev, SynFloodEvent) and self.syn is not None and not old:
            events = list(self.syn.on_kernel_event(ev, self.wall_clock()))
        for out in events:
            self.store(out, old=old)

    def store(self, ev: Event, old: bool = False, *, enriched: bool = False) -> None:
        if old:
            ev.history = True
        elif not enriched:
            try:
                ev = self.enrich(ev)
            except Exception:
                log.exception("enrichment failed; shipping the event without context")
        if ev.id is None:
            ev.id = f"{ev.boot_id}:{ev.seq}" if ev.seq is not None else f"{ev.kind}:{ev.time}"
        last = self._revisions.get(ev.id)
        if last is not None and ev.revision <= last:
            ev.revision = last + 1
        if len(self._revisions) > 100_000:
            self._revisions.clear()
        self._revisions[ev.id] = ev.revision
        body = ev.model_dump(mode="json")
        if last is None:  # the first revision of this event seen by this process
            self.stats.events[ev.kind] += 1
            self.metrics.events.labels(kind=ev.kind).inc()
        if self.reconciler is not None and isinstance(ev, OomKillEvent):
            kills = _kills_in(ev)
            if kills and ev.id not in self._counted_ids:
                self._counted_ids.add(ev.id)
                self.reconciler.saw_kills(kills)
        self.history.add(body, now=self.wall_clock())
        if self.outbox.put(ev.id, ev.revision, ev.kind, body):
            self.on_stored()
        if not old:
            self.on_live(ev)


def _kills_in(ev: OomKillEvent) -> int:
    if ev.missing_from_log or ev.panic or ev.victim.pid is None:
        return 0
    return max(1, len(ev.group_victims)) if ev.group_kill else 1
