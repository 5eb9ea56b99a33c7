"""Scan a big kernel log fast by parsing only the regions that can hold an event.

A day of kern.log is millions of lines and almost none of them are about OOM kills or SYN
floods. Parsing every line costs microseconds each; finding a few fixed keywords with
`bytes.find` costs nanoseconds per line. So `detect_bytes` finds the keyword positions, backs
up a few lines before each (so the line reader sees the record a continuation line belongs to),
and feeds lines from there for as long as the detector has a report half read. Everything else
is skipped without being decoded. Inside a report, runs of lines the OOM parser has no use for
but their text (stack, memory.stat, task rows) go to the detectors in one step
(`kernbot.core.blocks`). The result is the same as feeding every line
(`detect_bytes(data, fast=False)`), which the tests check on the corpus and on mixed logs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from kernbot.core.blocks import PlainRuns
from kernbot.core.bytesearch import find_all
from kernbot.core.deferred import Deferred
from kernbot.core.detector import DETECTORS, Detector, finish_event
from kernbot.core.events import Event
from kernbot.core.formats.reader import LineReader
from kernbot.core.record import Record

KEYWORDS: tuple[bytes, ...] = tuple(k for d in DETECTORS for k in d.keywords)
"""Every line that can start (or, alone, make) an event contains one of these: the keywords each
detector registers in `kernbot.core.detector.DETECTORS`. Long needles search faster."""

JSON_PRETTY = b'"dmesg"'
"""Pretty-printed `dmesg --json` spreads records over lines with file-wide state: no skipping."""

BACKUP_LINES = 2
"""Lines fed before a keyword line: the reader needs the line a continuation belongs to."""
MAX_CONTINUATION = 2000
"""How far back to look for the head of a run of indented continuation lines."""
AFTER_LINES = 2
"""Lines fed after the last keyword line once nothing is pending (readers emit one line late)."""


CHUNK = 2 << 20
"""Bytes searched for every needle before moving on: stays in the CPU cache."""


def candidate_offsets(data: bytes, *, use_libc: bool = True, size: int | None = None) -> list[int]:
    """Sorted byte offsets of every keyword occurrence in `data[:size]`: all needles one
    cache-sized chunk at a time (one pass over memory, not sixteen), with libc's memmem unless
    `use_libc` is False (`kernbot.core.bytesearch`)."""
    size = len(data) if size is None else min(size, len(data))
    found: set[int] = set()
    overlap = max(map(len, KEYWORDS)) - 1
    for chunk_start in range(0, size, CHUNK):
        chunk_end = min(chunk_start + CHUNK, size)
        limit = min(chunk_end + overlap, size)
        hits = find_all(data, KEYWORDS, chunk_start, limit, use_libc=use_libc)
        found.update(hit for hit in hits if hit < chunk_end)
    return sorted(found)


class Releaser:
    """Holds each event's newest revision until it is final, then hands events out in order.

    An event is final once the detector can no longer revise it (`Detector.live_ids`). Events
    leave in order of first appearance, so one still open holds back the ones after it; past
    `cap` held events the oldest leaves anyway (a later revision of it would then be handed out
    again, with its higher `revision`), which bounds memory on any input. Revision 0 always
    starts a new event, so two reports that hash to the same id stay two events. Revisions may
    be held unbuilt (`kernbot.core.deferred`): only the one that leaves is built.
    """

    def __init__(self, cap: int | None = None) -> None:
        self.cap = cap
        self._held: dict[int, Event | Deferred] = {}
        self._slot_of: dict[str, int] = {}
        """Newest slot of each id that is held or may still be revised."""
        self._next = 0

    def add(self, events: Iterable[Event | Deferred]) -> None:
        for ev in events:
            key = ev.id or f"anon:{self._next}:{ev.kind}"
            slot = self._slot_of.get(key)
            if ev.revision == 0 or slot is None or slot not in self._held:
                slot = self._next
                self._next += 1
                self._slot_of[key] = slot
                self._held[slot] = ev
            elif ev.revision >= self._held[slot].revision:
                self._held[slot] = ev

    def __len__(self) -> int:
        return len(self._held)

    def release(self, live: set[str], *, everything: bool = False) -> list[Event]:
        """The held events that are final (all of them with `everything`), oldest first."""
        out: list[Event] = []
        held = self._held
        while held:
            slot = next(iter(held))
            ev = held[slot]
            key = ev.id or ""
            newest = self._slot_of.get(key) == slot
            over = self.cap is not None and len(held) > self.cap
            if not everything and not over and newest and key in live:
                break
            del held[slot]
            if newest and key not in live:
                del self._slot_of[key]
            out.append(ev.build() if isinstance(ev, Deferred) else ev)
        if everything and not live:
            self._slot_of.clear()
        return out


class _Feeder:
    """One LineReader and one Detector, fed line by line; holds revisions until final."""

    def __init__(
        self,
        host: str | None,
        boot_id: str | None,
        year: int | None,
        cap: int | None,
        fmt: str | None = None,
    ) -> None:
        self.reader = LineReader(host=host, boot_id=boot_id, year=year, fmt=fmt)
        self.deferred: list[Event | Deferred] = []
        """Revisions the detector emitted unbuilt: moved into `held` after every record."""
        self.detector = Detector(
            host=host, boot_id=boot_id, advise=False, diagnose=False, defer=self.deferred
        )
        self.held = Releaser(cap)

    def line(self, text: str, lineno: int) -> None:
        for rec in self.reader.feed(text, lineno):
            self._records(rec)

    def _records(self, rec: Record) -> None:
        found = self.detector.feed(rec)
        if found:
            self.held.add(found)
        if self.deferred:
            self.held.add(self.deferred)
            self.deferred.clear()

    def release(self, *, everything: bool = False) -> list[Event]:
        if not len(self.held):
            return []
        out = self.held.release(self.detector.live_ids(), everything=everything)
        return [finish_event(ev) for ev in out]

    def finish(self) -> list[Event]:
        for rec in self.reader.flush():
            self._records(rec)
        self.held.add(self.detector.flush())
        self.held.add(self.deferred)
        self.deferred.clear()
        return [finish_event(ev) for ev in self.held.release(set(), everything=True)]


def iter_lines(data: bytes) -> Iterator[str]:
    """Every line of `data` decoded as UTF-8 (invalid bytes replaced), without its `\\n`."""
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return iter(lines)


def _is_continuation(data: bytes, start: int) -> bool:
    return data[start : start + 1] in (b" ", b"\t")


MAX_LINE = 64 << 10
"""Longest line kept whole. The kernel's own record limit is 1 KiB of text (printk's
`PRINTK_MESSAGE_MAX`/`LOG_LINE_MAX`); exports wrap a record in JSON or CSV, so allow far more,
but a line that never ends (`/dev/zero`, a binary file) must not grow without bound: past this
it is cut, the rest up to the next newline is dropped, and the cut is counted."""
KEEP_TAIL = 128 << 10
"""Unfed lines carried from one chunk into the next, so a keyword line near the start of a chunk
can still back up to the record head its continuation lines belong to."""


class ByteScanner:
    """`detect_bytes` in pieces: feed chunks of a log as they are read, get events when final.

    Memory stays flat whatever the input: a chunk, the carried tail (at most `KEEP_TAIL` plus one
    line of at most `MAX_LINE`), the open and recent reports, and at most `cap` held events.
    """

    def __init__(
        self,
        *,
        host: str | None = None,
        boot_id: str | None = None,
        year: int | None = None,
        fast: bool = True,
        cap: int | None = None,
        fmt: str | None = None,
    ) -> None:
        self._feeder = _Feeder(host, boot_id, year, cap, fmt)
        self._plain = PlainRuns(self._feeder.reader, self._feeder.detector) if fast else None
        """Runs of a report's plain lines fed at once (`kernbot.core.blocks`); the reference
        result (`fast=False`) feeds every line one by one."""
        self.max_line = MAX_LINE
        self._every_line = not fast
        self._buf = b""
        self._lineno = 0
        self._running = False  # a run of fed lines goes on into the next chunk
        self._after = 0
        self._dropping = False  # inside a cut line: drop bytes up to its newline
        self.cut_lines = 0
        """Lines longer than `MAX_LINE` that were cut."""

    def feed(self, chunk: bytes) -> list[Event]:
        """Events that became final with this chunk (final revisions, first appearance first)."""
        if self._dropping:
            nl = chunk.find(b"\n")
            if nl < 0:
                return []
            chunk = chunk[nl + 1 :]
            self._dropping = False
        buf = self._buf + chunk if self._buf else chunk
        end = buf.rfind(b"\n") + 1
        if len(buf) - end > MAX_LINE:  # a line that has not ended within the limit: cut it
            buf = buf[: end + MAX_LINE] + b"\n"
            end = len(buf)
            self.cut_lines += 1
            self._dropping = True
        if end == 0:
            self._buf = buf
            return []
        pos = self._scan(buf, end)
        tail = max(pos, end - KEEP_TAIL)
        if tail > pos:
            tail = buf.find(b"\n", tail - 1) + 1 or end
            self._lineno += buf.count(b"\n", pos, tail)
        self._buf = buf[tail:]
        return self._feeder.release()

    def finish(self) -> list[Event]:
        """Everything still held: call at the end of the input."""
        buf = self._buf
        self._buf = b""
        if buf:
            if not buf.endswith(b"\n"):
                buf += b"\n"
            self._scan(buf, len(buf))
        return self._feeder.finish()

    def idle(self) -> list[Event]:
        """Every held event as it stands (the input paused: show what is known so far)."""
        return self._feeder.release(everything=True)

    def _scan(self, data: bytes, size: int) -> int:
        """Feed the lines of `data[:size]` (whole lines) that can matter; the first unfed byte."""
        if self._plain is not None:
            self._plain.reset()
        if not self._every_line and JSON_PRETTY in data:
            self._every_line = True  # pretty-printed `dmesg --json`: file-wide state
        pos = 0
        if self._every_line or self._running:
            pos = self._run(data, 0, size, -1 if self._running and not self._every_line else size)
            if self._every_line:
                return pos
        for cand in candidate_offsets(data, size=size):
            if cand < pos:
                continue
            start = data.rfind(b"\n", pos, cand) + 1 or pos
            for _ in range(BACKUP_LINES):
                if start <= pos:
                    break
                start = data.rfind(b"\n", pos, start - 1) + 1 or pos
            steps = 0
            while start > pos and _is_continuation(data, start) and steps < MAX_CONTINUATION:
                start = data.rfind(b"\n", pos, start - 1) + 1 or pos
                steps += 1
            self._lineno += data.count(b"\n", pos, start)
            self._after = 0
            pos = self._run(data, start, size, data.find(b"\n", cand))
            if pos >= size:
                break
        return pos

    def _run(self, data: bytes, pos: int, size: int, cand_end: int) -> int:
        """Feed lines from `pos` while a report is pending (or up to `cand_end`), then a few."""
        feeder = self._feeder
        detector = feeder.detector
        read = feeder.reader.feed
        plain = self._plain
        slow_until = 0  # a run of plain lines a detector refused: fed line by line up to here
        detect = detector.feed
        held = feeder.held
        deferred = feeder.deferred
        after = self._after
        every = self._every_line
        lineno = self._lineno
        find = data.find
        while pos < size:
            end = find(b"\n", pos, size)
            if end < 0:
                end = size
            if (
                plain is not None
                and pos >= slow_until
                and plain.may_start(data, pos, end)
                and (took := plain.take(data, pos, size, lineno)) is not None
            ):
                run_end, count, fed = took
                if fed:  # detectors pending all along: `after` stays 0
                    pos, lineno, after = run_end, lineno + count, 0
                    continue
                slow_until = run_end
            lineno += 1
            for rec in read(data[pos:end].decode("utf-8", "replace"), lineno):
                found = detect(rec)
                if found:
                    held.add(found)
                if deferred:
                    held.add(deferred)
                    deferred.clear()
            pos = end + 1
            if every:
                continue
            if pos > cand_end and not detector.pending:
                after += 1
                if after > AFTER_LINES:
                    self._lineno, self._after, self._running = lineno, 0, False
                    return pos
            else:
                after = 0
        self._lineno, self._after, self._running = lineno, after, True
        return pos


def detect_bytes(
    data: bytes,
    *,
    host: str | None = None,
    boot_id: str | None = None,
    year: int | None = None,
    fast: bool = True,
) -> list[Event]:
    """Every event in a whole log file's bytes: final revisions, in order of first appearance.

    `year` dates year-less syslog stamps; `fast=False` feeds every line (the reference result).
    """
    scanner = ByteScanner(host=host, boot_id=boot_id, year=year, fast=fast)
    return scanner.feed(data) + scanner.finish()


SNIFF_LINES = 5000


def newest_first(data: bytes, *, year: int | None = None, fmt: str | None = None) -> bool:
    """Whether the lines of `data` (the start of a log) run newest first, as table exports
    sorted by time descending do (Kibana Discover, `gcloud logging read`): their records' times
    go down more often than up. A report read backwards has its kill line before its header, so
    such a file is read from its end (`kernbot scan` does, for regular files)."""
    reader = LineReader(year=year, fmt=fmt)
    last: float | None = None
    down = up = 0
    for lineno, line in enumerate(iter_lines(data[: 4 << 20]), 1):
        if lineno > SNIFF_LINES:
            break
        for rec in reader.feed(line, lineno):
            if rec.mono_usec is not None:
                now: float | None = rec.mono_usec / 1e6
            elif rec.wall is not None:
                now = rec.wall.timestamp()
            else:
                now = None
            if now is None:
                continue
            if last is not None:
                if now < last:
                    down += 1
                elif now > last:
                    up += 1
            last = now
    return down >= 3 and down > 2 * up
