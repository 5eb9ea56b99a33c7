"""Assemble the many records of one kernel OOM report into one `OomKillEvent`, live.

The kernel prints an OOM kill as 20 to thousands of records (header, stack, Mem-Info or memcg
counters, task table, `oom-kill:` summary, the kill line, and ~2 s later the reaper line), which
may be truncated, back to back, interleaved with other messages, or cut by `grep`. An alert
should go out the moment the kill line arrives, so the assembler emits then and re-emits the same
event id with a higher `revision` when later records (reaper, memory.oom.group kills) add to it.
Reports that never reach a kill line (panic_on_oom, truncation, fragments) are emitted on
`flush()` or when the next report starts, with `complete=False`.

Boundaries: a header (`… invoked oom-killer:`) always starts a report. Headerless fragments
start at any line that only an OOM report prints (memcg counters, `Task in`, task table, the
`oom-kill:` line, kill/reaper/panic lines). Before the kill line every record is kept in `lines`;
after it only follow-ups are absorbed, and a second kill line that is not part of a
memory.oom.group kill starts the next report. A 30 s gap in monotonic time, or 400 records in a
row that mean nothing to an OOM report, end a report that never reached its kill line.
"""

from __future__ import annotations

from collections import deque

from kernbot.core.deferred import Deferred
from kernbot.core.events import Event, OomKillEvent
from kernbot.core.oom import lines as ol
from kernbot.core.oom.era import kernel_era
from kernbot.core.oom.event import build_event, report_event_id
from kernbot.core.oom.report_state import ReportState
from kernbot.core.record import Record

__all__ = [
    "GAP_USEC",
    "MAX_UNRECOGNISED_RUN",
    "RECENT_REPORTS",
    "DeferredOomEvent",
    "OomAssembler",
    "build_event",
    "kernel_era",
]

GAP_USEC = 30_000_000
"""A report is printed within moments; a longer silence means the rest was lost."""
MAX_UNRECOGNISED_RUN = 400
RECENT_REPORTS = 16
"""Emitted reports kept for late follow-ups (the reaper line comes ~2 s after the kill)."""

_STARTERS = ol.HEADERLESS_STARTERS


class DeferredOomEvent(Deferred):
    """One revision of a report's event, built when asked.

    Exact because of when it is made: for a report that is closed or has its kill line, every
    later change to what `build_event` reads is followed by the next revision, which replaces
    this one; only lines may be added without one (a `sharing same memory` line), so the number
    of lines is kept. A report still open without a kill line absorbs lines without emitting, so
    its revisions are built at once instead (`OomAssembler._emit_if_changed`).
    """

    __slots__ = ("_boot_id", "_host", "_lines", "_state", "id", "revision")
    kind = "oom_kill"

    def __init__(
        self, state: ReportState, revision: int, host: str | None, boot_id: str | None
    ) -> None:
        self.id: str | None = state.last_id
        self.revision = revision
        self._state = state
        self._lines = len(state.lines)
        self._host = host
        self._boot_id = boot_id

    def build(self) -> Event:
        return build_event(
            self._state,
            host=self._host,
            boot_id=self._boot_id,
            lines=self._lines,
            revision=self.revision,
        )


class OomAssembler:
    """Feed records in log order; get `OomKillEvent`s as soon as they are known.

    `feed()` returns the events emitted or updated by that record (a new report's header also
    closes the previous one); `flush()` at end of input or after an idle timeout emits what is
    still pending. An updated event keeps its `id` and has a higher `revision`.
    """

    def __init__(self, *, host: str | None = None, boot_id: str | None = None) -> None:
        self._host = host
        self._boot_id = boot_id
        self._sink: list[Event | Deferred] | None = None
        self._open: ReportState | None = None
        self._recent: deque[ReportState] = deque(maxlen=RECENT_REPORTS)
        self._fed = 0
        self._manual: tuple[Record, int] | None = None
        """The last `sysrq: Manual OOM execution` and its position: the next report's cause."""

    def defer_to(self, sink: list[Event | Deferred]) -> None:
        """From now on put emitted revisions in `sink` (as `DeferredOomEvent`s where exact)
        instead of returning them from `feed` and `flush`, which then return []."""
        self._sink = sink

    @property
    def pending(self) -> bool:
        """True while a report is being assembled and has not been emitted yet."""
        return self._open is not None and not self._open.emitted

    @property
    def holding(self) -> bool:
        """`pending` or `absorbing`: a reader that skips lines must feed the next one."""
        op = self._open
        return op is not None and (not op.emitted or op.killed is None)

    @property
    def absorbing(self) -> bool:
        """True while an open report has no kill line yet and so still takes every line.

        Unlike `pending`, this stays True after a headerless fragment was emitted early (say on
        a reaper line): that report keeps absorbing what follows until a gap, a run of
        unrelated lines or the next report closes it, so a reader that skips lines (the scan
        fast path) must keep feeding while this holds.
        """
        return self._open is not None and self._open.killed is None

    def live_ids(self) -> set[str]:
        """Ids of the emitted events a later record may still revise: open and recent reports."""
        ids = {r.last_id for r in self._recent if r.last_id is not None}
        op = self._open
        if op is not None and op.last_id is not None:
            ids.add(op.last_id)
        return ids

    def feed(self, rec: Record) -> list[OomKillEvent]:
        parsed = ol.parse_line(rec.text)
        out: list[OomKillEvent] = []
        self._fed += 1
        r = self._open
        if r is not None and r.killed is None:
            mono, last = rec.mono_usec, r.last_mono
            if mono is not None and last is not None and mono - last > GAP_USEC:  # a gap: stale
                out += self._close()
                r = None
        if parsed is None:  # most lines of a report (stack, stats, table rows), and all others
            if r is not None and r.killed is None:
                r.absorb(rec, None)
                if r.unrecognised_run >= MAX_UNRECOGNISED_RUN:
                    out += self._close()
            return out
        if isinstance(parsed, ol.SysrqOom):
            self._manual = None if parsed.ignored else (rec, self._fed)
        elif isinstance(parsed, ol.Header):
            out += self._close()
            return out + self._start(rec, parsed)
        elif isinstance(parsed, ol.ReaperLine):
            target = self._owner_of(parsed.pid)
            if target is not None:
                target.absorb(rec, parsed)
                return out + self._emit_if_changed(target)
            if r is not None and r.killed is None and r.reaper is not None:
                # A fragment already reaped another pid: this is another lost kill.
                out += self._close()
                return out + self._start(rec, parsed)
        if r is None:
            if isinstance(parsed, _STARTERS):
                return out + self._start(rec, parsed)
            return out
        if r.killed is None:
            r.absorb(rec, parsed)
            if isinstance(parsed, ol.Killed):
                out += self._emit_if_changed(r)
            elif r.unrecognised_run >= MAX_UNRECOGNISED_RUN:
                out += self._close()
            return out
        # After the kill line: only follow-ups join; another report's line starts it.
        if isinstance(parsed, ol.OomGroup) or (
            isinstance(parsed, ol.KillProcess) and parsed.sharing
        ):
            r.absorb(rec, parsed)
            return out + self._emit_if_changed(r)
        if isinstance(parsed, (ol.Killed, ol.VictimExiting)) and r.group_path is not None:
            r.absorb(rec, parsed)
            return out + self._emit_if_changed(r)
        if isinstance(parsed, ol.MmPinned) and parsed.pid in r.victim_pids():
            r.absorb(rec, parsed)
            return out + self._emit_if_changed(r)
        if isinstance(parsed, _STARTERS):
            out += self._close()
            return out + self._start(rec, parsed)
        return out

    def flush(self) -> list[OomKillEvent]:
        return self._close()

    def takes_plain(self, lo: int, hi: int, n: int) -> bool:
        """Whether `feed_plain` can take `n` records that `parse_line` says None for, whose
        monotonic times lie within [lo, hi]: neither a gap nor a run of unrelated lines closes
        the open report among them, and no wrapped `Task in` line waits for its tail."""
        r = self._open
        if r is None or r.killed is not None:
            return True
        if r.wrapped_task_in or r.unrecognised_run + n >= MAX_UNRECOGNISED_RUN:
            return False
        last = r.last_mono
        return hi - (lo if last is None or lo < last else last) <= GAP_USEC

    def feed_plain(self, texts: list[str], last_mono: int) -> None:
        """`feed` of a record for each of `texts` (see `takes_plain`), the last at `last_mono`:
        none emits anything; an open report without its kill line keeps them."""
        self._fed += len(texts)
        r = self._open
        if r is not None and r.killed is None:
            r.absorb_plain(texts, last_mono)

    @staticmethod
    def _stale_after(last_mono: int | None, rec: Record) -> bool:
        return (
            rec.mono_usec is not None
            and last_mono is not None
            and rec.mono_usec - last_mono > GAP_USEC
        )

    def _owner_of(self, pid: int) -> ReportState | None:
        """The report a reaper line for `pid` belongs to: its victim's, or an open fragment.

        A back-to-back report may already be open when the previous victim's reaper line comes,
        so victims are matched by pid before an open report without a kill line takes the line.
        """
        op = self._open
        if op is not None and pid in op.victim_pids():
            return op
        for r in reversed(self._recent):
            if pid in r.victim_pids():
                return r
        if op is not None and op.killed is None and op.reaper is None:
            return op
        return None

    def _start(self, rec: Record, parsed: ol.Parsed | None) -> list[OomKillEvent]:
        r = ReportState(first=rec, manual=self._take_manual(rec))
        self._open = r
        r.absorb(rec, parsed)
        if r.killed is not None:
            return self._emit_if_changed(r)
        return []

    def _take_manual(self, rec: Record) -> bool:
        """Whether a report starting at `rec` is the answer to a recent SysRq-f."""
        found, self._manual = self._manual, None
        if found is None:
            return False
        sysrq, at = found
        if self._fed - at > MAX_UNRECOGNISED_RUN:
            return False
        return not self._stale_after(sysrq.mono_usec, rec)

    def _close(self) -> list[OomKillEvent]:
        r, self._open = self._open, None
        if r is None:
            return []
        if r.emitted:
            self._recent.append(r)
            return []
        if not r.evidence:
            return []
        self._recent.append(r)
        return self._emit_if_changed(r)

    def _emit_if_changed(self, r: ReportState) -> list[OomKillEvent]:
        """A new revision when the report says more than its last one (built once, not copied:
        each revision is a fresh object, so callers may change what they are handed)."""
        fingerprint = r.fingerprint()
        if r.emitted and fingerprint == r.last_fingerprint:
            return []
        revision = r.last_revision + 1
        r.emitted = True
        r.last_revision = revision
        r.last_fingerprint = fingerprint
        sink = self._sink
        if sink is not None and (r.killed is not None or r is not self._open):
            if r.last_id is None:
                r.last_id = report_event_id(r, self._host, self._boot_id)
            sink.append(DeferredOomEvent(r, revision, self._host, self._boot_id))
            return []
        event = build_event(r, host=self._host, boot_id=self._boot_id, revision=revision)
        r.last_id = event.id
        if sink is not None:
            sink.append(event)
            return []
        return [event]
