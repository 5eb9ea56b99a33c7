"""The agent's data path: source batches -> detector -> stages -> store (ARCHITECTURE.md).

Every event is written to the history and the outbox before anyone is told about it. Old events
(the ring buffer found on first start, or older than `history_max_age_s`) are stored and shipped
with `history = True`, which tells the bot to keep them without alerting. The position
to resume from only advances while no report is half assembled, so a restart re-reads whole
reports; the outbox drops what was already sent (same id and revision).

The pipeline knows no event kind: what happens to an event between detection and the store is
the list of stages (kernbot.agent.stages) the composition root gives it.

A source batch is handled as one unit (issue 11: a node in an OOM loop prints ~100 reports a
second, each emitted twice or more as its lines arrive). The detector's events are queued while
the batch is read; then only the newest revision of each event runs through `finish` (the
diagnosis) and the stages, each step over the whole batch before the next (`_staged`), each
stored revision is encoded once (kernbot.agent.stored), the history and the outbox take the
batch in one transaction each, and only then does the safe position move past it. A revision
superseded within its batch could never have been shipped (the shipper runs on the same event
loop, after the batch) and the outbox keeps one row per id anyway; nothing the bot sees changes
but the work. With `deferred` (the sink the detector was
made with, `Detector(defer=...)`) the detector's revisions arrive unbuilt (kernbot.core.deferred)
and only the newest of each event in a batch is built, at the end of the batch, then dated and
judged live or history exactly as an event built at once would have been. Events from periodic
jobs and late stage answers (`emit`, `resume` outside a batch) are stored at once.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from kernbot.agent.clock import SYSTEM_CLOCK, Clock
from kernbot.agent.file_lines import FileLines, line_ends, read_all
from kernbot.agent.history import RecentLines, event_epoch
from kernbot.agent.metrics import AgentMetrics
from kernbot.agent.position import Position
from kernbot.agent.sources import Batch, Item
from kernbot.agent.stages import Stage
from kernbot.agent.stored import Stored
from kernbot.core.deferred import Deferred
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

    def add_many(self, rows: Sequence[Stored]) -> None: ...


class EventOutbox(Protocol):
    """kernbot.agent.outbox.Outbox: what the shipper drains."""

    def put_many(self, rows: Sequence[Stored]) -> Sequence[Stored]:
        """The rows taken (not those whose id already has this or a newer revision)."""
        ...


_Queued = tuple[Event | Deferred, bool, Sequence[Stage], bool]
"""(event, live, the stages it still runs through, whether it came from the detector); for a
`Deferred` revision `live` is whether its batch was live (`not old`), judged again once built."""


@dataclass
class Stats:
    records_read: int = 0
    records_lost: int = 0
    records_garbled: int = 0
    records_in_runs: int = 0
    """Records of a log file's batches fed to the detector in runs of an OOM report's plain
    lines (`kernbot.core.blocks`): part of `records_read`."""
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
        finish: Callable[[Event], None] | None = None,
        on_stored: Callable[[], None] = lambda: None,
        on_position: Callable[[Position], None] = lambda pos: None,
        first_start: bool = False,
        history_max_age_s: float = 86400.0,
        boot_id: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        deferred: list[Event | Deferred] | None = None,
    ) -> None:
        self.detector = detector
        self.deferred = deferred
        """The sink of a detector made with `defer=`: what it emitted since it was last taken."""
        self.outbox = outbox
        self.history = history
        self.recent = recent
        self.metrics = metrics
        self.stages = list(stages)
        self.finish = finish
        """Applied once to the newest revision of each detector event in a batch, before the
        stages (the diagnosis, which the detector would otherwise redo for every revision)."""
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
        self._queued: dict[tuple[str, int], _Queued] = {}
        """Events waiting for the end of the batch, the newest revision per (id, first stage)."""
        self._in_batch = False
        self._committing = False
        self._pending_position: Position | None = None
        """The safe position the batch reached, taken once its events are stored."""
        self._lines = FileLines(detector)
        """Reads log files' batches of bytes (`_read_data`)."""

    def feed(self, batch: Batch) -> None:
        self._in_batch = True
        try:
            self._feed(batch)
        finally:
            self._in_batch = False
            self._commit()

    def _feed(self, batch: Batch) -> None:
        texts = self._read_data(batch) if batch.data else self._read_items(batch)
        self.stats.records_read += len(texts)
        self.recent.extend(texts)
        if batch.items or batch.data:
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

    def _read_items(self, batch: Batch) -> list[str]:
        """Detect in a batch of records; their texts."""
        items = batch.items
        texts = [rec.text for item in items for rec in item.records]
        if self.detector.pending or may_hold_event("\n".join(texts)):
            self._detect(batch)
        elif items:
            # Nothing in this batch can start or continue a report: the detector would return
            # no events and stay idle, so skip it and only move the position.
            last = next((p for i in reversed(items) if (p := batch.resume_at(i)) is not None), None)
            if last is not None:
                self._latest_position = last
                self._advance(last)
        return texts

    def _read_data(self, batch: Batch) -> list[str]:
        """Read and detect in a batch of whole lines (`Batch.data`); the texts of their records.

        The same records, events, counts and positions as the batch's lines read one by one
        into `Item`s (`kernbot.agent.sources.logfile.read_items`; the tests compare them), for
        less: without a keyword in the bytes and no report pending the lines are only read (as
        `_read_items` skips the detector), else runs of a pending report's plain lines go to
        the detector in one step (`kernbot.agent.file_lines`)."""
        texts: list[str] = []
        if self.detector.pending or _has_keyword(batch.data):
            try:
                self._detect_lines(batch, self._lines.lines(batch, texts))
            finally:
                self.stats.records_in_runs = self._lines.in_runs
            return texts
        read = read_all(batch, texts)
        if may_hold_event("\n".join(texts)):  # a keyword a JSON escape hid (`\\u0020`)
            self._detect_lines(batch, zip(read, line_ends(batch.data), strict=True))
        elif batch.place is not None:
            last = batch.place(batch.start + len(batch.data))
            self._latest_position = last
            self._advance(last)
        return texts

    def _detect_lines(self, batch: Batch, lines: Iterable[tuple[list[Record], int]]) -> None:
        """`_detect` for the lines of `batch.data`: (records, offset after the line) each."""
        old = batch.backlog and self.first_start
        detector = self.detector
        detect = detector.feed
        deferred = self.deferred
        done = 0  # the end of the last line fed
        safe = 0  # the end of the last line after which no report was half read
        try:
            for records, end in lines:
                for rec in records:
                    for ev in detect(rec):
                        self._emit(ev, old, detected=True)
                if deferred:
                    self._take_deferred(old)
                done = end
                if not detector.pending:
                    safe = end
        finally:
            place = batch.place
            if place is not None and done:
                latest = place(batch.start + done)
                self._latest_position = latest
                if safe:
                    self._advance(latest if safe == done else place(batch.start + safe))

    def _detect(self, batch: Batch) -> None:
        old = batch.backlog and self.first_start
        # The last item with a position, and the last after which no report was half read:
        # their positions, made only now (`Batch.resume_at`), are the latest and the safe one.
        last: Item | None = None
        safe: Item | None = None
        try:
            for item in batch.items:
                for rec in item.records:
                    for ev in self.detector.feed(rec):
                        self._emit(ev, old, detected=True)
                if self.deferred:
                    self._take_deferred(old)
                if item.position is not None or item.end is not None:
                    last = item
                    if not self.detector.pending:
                        safe = item
        finally:
            latest = batch.resume_at(last) if last is not None else None
            if latest is not None:
                self._latest_position = latest
            if safe is not None:
                pos = latest if safe is last else batch.resume_at(safe)
                if pos is not None:
                    self._advance(pos)

    def flush_if_idle(self, timeout_s: float) -> None:
        """Emit a report that stopped arriving (truncated, or the rest was never printed)."""
        if self.detector.pending and self.clock.mono() - self.last_record_mono >= timeout_s:
            self.flush()

    def flush(self) -> None:
        self._in_batch = True
        try:
            for ev in self.detector.flush():
                self._emit(ev, False, detected=True)
            if self.deferred:
                self._take_deferred(False)
            if self._latest_position is not None:
                self._advance(self._latest_position)
        finally:
            self._in_batch = False
            self._commit()

    def _advance(self, pos: Position) -> None:
        if self._in_batch:
            self._pending_position = pos
            return
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
        """An event from a periodic job: decide live or history, run it through every stage,
        store what comes out."""
        self._emit(ev, old, detected=False)

    def _take_deferred(self, old: bool) -> None:
        """Queue what the detector put in its sink, in order; a revision queued unbuilt replaces
        the one before it as a built event would (same key), and is built at the commit."""
        assert self.deferred is not None
        items, self.deferred[:] = list(self.deferred), []
        for item in items:
            if isinstance(item, Deferred) and item.id is not None:
                self._queue(item.id, (item, not old, self.stages, True))
            else:
                self._emit(item.build() if isinstance(item, Deferred) else item, old, detected=True)

    def _emit(self, ev: Event, old: bool, *, detected: bool) -> None:
        self._run(ev, self._judge(ev, old), self.stages, detected)

    def _judge(self, ev: Event, old: bool) -> bool:
        """Date the event, mark history; whether it is live."""
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
        return not old

    def resume(self, ev: Event, after: Stage) -> None:
        """A stage's later answer for a live event (a revision of it): the stages after `after`
        run on it, then it is stored as the next revision."""
        rest = self.stages[self.stages.index(after) + 1 :]
        self._run(ev, True, rest, False)

    def _run(self, ev: Event, live: bool, stages: Sequence[Stage], detected: bool) -> None:
        self._queue(_identify(ev), (ev, live, stages, detected))
        if not self._in_batch and not self._committing:
            self._commit()

    def _queue(self, event_id: str, entry: _Queued) -> None:
        """Queue for the commit; a newer revision supersedes the queued one (moved to the end)."""
        key = (event_id, len(entry[2]))
        self._queued.pop(key, None)
        self._queued[key] = entry

    def _commit(self) -> None:
        """Run the queued events through their stages, store what comes out, then move the
        safe position to where the batch got."""
        if self._committing:
            return  # a stage resumed an event: the loop below takes it
        self._committing = True
        try:
            while self._queued:
                queued, self._queued = self._queued, {}
                self.store(self._staged(list(queued.values())))
        except BaseException:
            # Not stored (the disk is full, say): the source is reopened at the safe position
            # and reads these records again; nothing may move past them meanwhile (a flush).
            self._queued.clear()
            if self.deferred:
                self.deferred.clear()
            self._pending_position = None
            self._latest_position = self.safe_position
            raise
        finally:
            self._committing = False
        pos, self._pending_position = self._pending_position, None
        if pos is not None:
            self._advance(pos)

    def _staged(self, queued: list[_Queued]) -> list[Event]:
        """The queued events built, judged, finished and run through their stages: what to
        store, in queue order. Each step, and then each stage, takes the whole batch in turn
        (issue 11: with one step's code kept warm over the batch, a batch of an OOM loop costs
        ~5 % less than taking each event through every step). A stage meets the events in
        queue order, as it would one by one; stages share no state but the events they pass
        on (the enricher's pod names, which `ApiPodNames` reads, may be a batch newer)."""
        built = [item.build() if isinstance(item, Deferred) else item for item, *_ in queued]
        live = [
            self._judge(ev, not was_live) if isinstance(item, Deferred) else was_live
            for ev, (item, was_live, _, _) in zip(built, queued, strict=True)
        ]
        if self.finish is not None:
            for ev, (_, _, _, detected) in zip(built, queued, strict=True):
                if detected:
                    self.finish(ev)
        runs = [[ev] for ev in built]
        for stage in self.stages:
            for events, is_live, (_, _, stages, _) in zip(runs, live, queued, strict=True):
                if stage in stages:
                    events[:] = [after for each in events for after in stage.run(each, is_live)]
        return [ev for events in runs for ev in events]

    def store(self, events: Sequence[Event]) -> None:
        """History and outbox, each revision with a revision above every one stored before
        for its id, encoded once; the newest of several for one id."""
        newest: dict[str, Event] = {}
        for ev in events:
            event_id = _identify(ev)
            newest.pop(event_id, None)
            newest[event_id] = ev
        if not newest:
            return
        now = self.clock.wall()
        rows: list[Stored] = []
        for event_id, ev in newest.items():
            last = self._revisions.get(event_id)
            if last is not None and ev.revision <= last:
                ev.revision = last + 1
            if len(self._revisions) > MAX_TRACKED_IDS:
                self._revisions.clear()
            self._revisions[event_id] = ev.revision
            if last is None:  # the first revision of this event seen by this process
                self.stats.events[ev.kind] += 1
                self.metrics.events.labels(kind=ev.kind).inc()
            at = event_epoch({"time": ev.time}) or now
            rows.append(Stored(event_id, ev.kind, ev.revision, at, _encode(ev)))
        self.history.add_many(rows)
        if self.outbox.put_many(rows):
            self.on_stored()


def _has_keyword(data: bytes) -> bool:
    """Whether a line of `data` may start an event (`may_hold_event` on the bytes)."""
    return any(k in data for k in KEYWORDS)


def _encode(ev: Event) -> str:
    """The event's JSON. A name read from the host (a cgroup directory, say) may hold bytes that
    are not UTF-8 (lone surrogates in Python), which pydantic's encoder refuses; `json` escapes
    them, as the agent always did."""
    try:
        return ev.model_dump_json()
    except ValueError:
        return json.dumps(ev.model_dump(mode="json"))


def _identify(ev: Event) -> str:
    if ev.id is None:
        ev.id = f"{ev.boot_id}:{ev.seq}" if ev.seq is not None else f"{ev.kind}:{ev.time}"
    return ev.id
