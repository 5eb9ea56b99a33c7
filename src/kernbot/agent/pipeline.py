"""The agent's data path: source batches -> detector -> stages -> store (ARCHITECTURE.md).

Every event is written to the history and the outbox before anyone is told about it. Old events
(the ring buffer found on first start, or older than `history_max_age_s`) are stored and shipped
with `history = True`, which tells the bot to keep them without alerting. The position
to resume from only advances while no report is half assembled, so a restart re-reads whole
reports; the outbox drops what was already sent (same id and revision).

The pipeline knows no event kind: what happens to an event between detection and the store is
the list of stages (kernbot.agent.stages) the composition root gives it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from kernbot.agent.clock import SYSTEM_CLOCK, Clock
from kernbot.agent.history import RecentLines, event_epoch
from kernbot.agent.metrics import AgentMetrics
from kernbot.agent.position import Position
from kernbot.agent.sources import Batch
from kernbot.agent.stages import Stage
from kernbot.core.events import Event, OomKillEvent
from kernbot.core.prefilter import KEYWORDS
from kernbot.core.record import Record

log = logging.getLogger(__name__)

_KEYWORDS = tuple(k.decode() for k in KEYWORDS)
MAX_TRACKED_IDS = 100_000


def may_hold_event(text: str) -> bool:
    """Cheap test before the full parse (the idea of `kernbot.core.prefilter`): a record without
    any of these keywords cannot start an OOM report or a SYN flood event."""
    return any(k in text for k in _KEYWORDS)


class EventDetector(Protocol):
    @property
    def pending(self) -> bool: ...
    def feed(self, rec: Record) -> list[Event]: ...
    def flush(self) -> list[Event]: ...


class EventHistory(Protocol):
    """kernbot.agent.history.History: what `/oom host` answers from."""

    def add(self, body: dict[str, Any], now: float | None = None) -> None: ...


class EventOutbox(Protocol):
    """kernbot.agent.outbox.Outbox: what the shipper drains."""

    def put(self, event_id: str, revision: int, kind: str, body: dict[str, Any]) -> bool: ...


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
        outbox: EventOutbox,
        history: EventHistory,
        recent: RecentLines,
        metrics: AgentMetrics,
        stages: Sequence[Stage] = (),
        on_stored: Callable[[], None] = lambda: None,
        on_position: Callable[[Position], None] = lambda pos: None,
        first_start: bool = False,
        history_max_age_s: float = 86400.0,
        boot_id: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.detector = detector
        self.outbox = outbox
        self.history = history
        self.recent = recent
        self.metrics = metrics
        self.stages = list(stages)
        self.on_stored = on_stored
        """Called after an event is in the outbox (wakes the shipper)."""
        self.on_position = on_position
        """Called with a position before it becomes the safe one, to note what goes with it
        (the reconciler's `oom_kills_accounted`)."""
        self.first_start = first_start
        self.history_max_age_s = history_max_age_s
        self.boot_id = boot_id
        self.clock = clock
        self.started_at = clock.wall()
        self.stats = Stats()
        self.safe_position: Position | None = None
        """Where a restart should resume: after the last record that left no half-read report."""
        self.last_record_mono = clock.mono()
        self._latest_position: Position | None = None
        self._revisions: dict[str, int] = {}
        """Highest revision stored per event id: an update made by a stage (pod names from the
        Kubernetes API) and a later one from the detector (the reaper line) never share one."""

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
            self.last_record_mono = self.clock.mono()
            self.metrics.records_read.inc(len(texts))
        if batch.lost:
            self.stats.records_lost += batch.lost
            self.metrics.records_lost.inc(batch.lost)
            log.warning("%d kernel log records were overwritten before they were read", batch.lost)
        if batch.garbled:
            self.stats.records_garbled += batch.garbled
            self.metrics.records_garbled.inc(batch.garbled)
        if batch.not_kernel:
            self.metrics.records_not_kernel.inc(batch.not_kernel)

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
        if self.detector.pending and self.clock.mono() - self.last_record_mono >= timeout_s:
            self.flush()

    def flush(self) -> None:
        for ev in self.detector.flush():
            self.emit(ev, old=False)
        if self._latest_position is not None:
            self._advance(self._latest_position)

    def _advance(self, pos: Position) -> None:
        self.on_position(pos)
        self.safe_position = pos

    def _fill_time(self, ev: Event) -> None:
        """kmsg records carry only boot-relative time; derive wall time for this boot's events."""
        if ev.time is not None or ev.mono_usec is None or ev.boot_id != self.boot_id:
            return
        if ev.boot_id is None:
            return
        at = self.clock.wall() - (self.clock.mono() - ev.mono_usec / 1e6)
        ev.time = datetime.fromtimestamp(at, UTC).isoformat()

    def emit(self, ev: Event, old: bool) -> None:
        """An event from the detector (or a periodic job): decide live or history, run it
        through every stage, store what comes out."""
        self._fill_time(ev)
        at = event_epoch({"time": ev.time})
        if old and at is not None and at >= self.started_at:
            # Read with the first start's backlog but printed after the agent started (a slow
            # backlog read races the kernel): it is live, not history.
            old = False
        too_old = at is not None and self.clock.wall() - at > self.history_max_age_s
        old = old or too_old or (isinstance(ev, OomKillEvent) and ev.context.before_first_start)
        if old:
            ev.history = True
        self._run(ev, live=not old, stages=self.stages)

    def resume(self, ev: Event, after: Stage) -> None:
        """A stage's later answer for a live event (a revision of it): the stages after `after`
        run on it, then it is stored as the next revision."""
        rest = self.stages[self.stages.index(after) + 1 :]
        self._run(ev, live=True, stages=rest)

    def _run(self, ev: Event, live: bool, stages: Sequence[Stage]) -> None:
        _identify(ev)
        events = [ev]
        for stage in stages:
            events = [out for each in events for out in stage.run(each, live)]
        for out in events:
            self.store(out)

    def store(self, ev: Event) -> None:
        """History and outbox, with a revision above every one stored before for this id."""
        event_id = _identify(ev)
        last = self._revisions.get(event_id)
        if last is not None and ev.revision <= last:
            ev.revision = last + 1
        if len(self._revisions) > MAX_TRACKED_IDS:
            self._revisions.clear()
        self._revisions[event_id] = ev.revision
        body = ev.model_dump(mode="json")
        if last is None:  # the first revision of this event seen by this process
            self.stats.events[ev.kind] += 1
            self.metrics.events.labels(kind=ev.kind).inc()
        self.history.add(body, now=self.clock.wall())
        if self.outbox.put(event_id, ev.revision, ev.kind, body):
            self.on_stored()


def _identify(ev: Event) -> str:
    if ev.id is None:
        ev.id = f"{ev.boot_id}:{ev.seq}" if ev.seq is not None else f"{ev.kind}:{ev.time}"
    return ev.id
