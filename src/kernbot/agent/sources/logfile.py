"""A kernel log file (/var/log/kern.log, /var/log/messages) followed like `tail -F`.

watchdog wakes the reader when the file or its directory changes; a slow poll backs it up for
filesystems without inotify. While the file keeps growing (a read found lines, and so did the next
one `BUSY_POLL_S` later) watchdog is switched off and the file is read every `BUSY_POLL_S`
(`STORM_POLL_S` after a read of `STORM_BYTES` or more):
watchdog handles each inotify event in its own threads, about half a millisecond apiece, and a
busy log makes one per write (issue 11: a tenth of a core at 100 writes a second, more than the
reads). The first read that finds nothing switches it on again and reads once more, so a line
written meanwhile is not left waiting.

Rotation (the path now names a new inode) drains the old file and starts the new one at 0;
truncation (size below our offset) restarts at 0; a missing file is waited for.
Position = inode + byte offset after the last whole line.

What a read found goes to the pipeline as it is, whole lines with their offset and this
source's line reader (`Batch.data`; `kernbot.agent.file_lines` reads them there, issue 11).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from kernbot.agent.position import Position
from kernbot.agent.sources import Batch, Item, SourceUnavailable

if TYPE_CHECKING:
    from kernbot.core.formats.reader import LineReader

log = logging.getLogger(__name__)

CHUNK = 1 << 20
FIRST_START_TAIL = 8 << 20
"""On first start read at most this much of an existing file: the rest is old history."""
POLL_S = 1.0
BUSY_POLL_S = 0.2
"""How often a growing file is read (watchdog off): at most this much added latency, while busy
(`STORM_POLL_S` in a storm).
Each read is one pipeline batch, and a batch has fixed costs (its SQLite transactions, a POST to
the bot, a position save) and a warm-up (each step's code runs over the batch, `Pipeline`): at
10,000 lines/s of OOM reports (issue 11) the agent spent 0.3-0.4 % of a core less reading every
100 ms than every 50 ms, and ~0.6 % less again every 200 ms, for 150 ms more delay under a
storm. The first lines after a quiet spell are read at once (watchdog)."""
STORM_BYTES = 64 << 10
"""A read of this much or more (over ~320 KB/s at `BUSY_POLL_S`: thousands of lines a second, a
node in an OOM loop) means a storm: the next read comes `STORM_POLL_S` later."""
STORM_POLL_S = 0.5
"""How often a file in a storm is read. Each batch also costs a warm-up (its code and data are
cold after the agent slept; the other processes ran meanwhile): at 10,000 lines/s of OOM reports
(issue 11) reading every 500 ms instead of 200 took the agent from 5.3-5.9 % of a core to
4.7-5.1 % (three alternating runs each), for at most 300 ms more delay while the log floods.
After a smaller read the file is read every `BUSY_POLL_S` as before."""


def busy_poll_s(read: int) -> float:
    """How long to wait before reading a growing file again after a read of `read` bytes."""
    return STORM_POLL_S if read >= STORM_BYTES else BUSY_POLL_S


MAX_LINE = 1 << 20
SIG_BYTES = 64
"""The last bytes read are re-checked before each read: a file rewritten in place (copytruncate
followed by more writes than we had read) no longer has them at our offset."""


def put_lines(batch: Batch, data: bytes, start: int, reader: LineReader) -> None:
    """Whole lines read at offset `start` of the file into `batch`: as bytes for the pipeline
    to read (`Batch.data`), or read here one by one (`read_items`) when a `\r` ends some of
    them (`splitlines` ends a line at one: the file source always did, the pipeline's reading of
    bytes does not)."""
    if b"\r" in data:
        read_items(batch, data, start, reader)
    else:
        batch.data, batch.start, batch.reader = data, start, reader


def read_items(batch: Batch, data: bytes, start: int, reader: LineReader) -> None:
    """The lines of `data` (at offset `start` of the file) as an `Item` each, read one by one:
    what the pipeline makes of `Batch.data` (the tests compare the two)."""
    offset = start
    for raw in data.splitlines(keepends=True):
        offset += len(raw)
        try:
            records = reader.feed(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        except ValueError:
            records = []
            batch.garbled += 1
        batch.items.append(Item(records=list(records), position=None, end=offset))


class _Wakeup:
    """watchdog handler: runs in watchdog's thread, so it only pokes the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event, name: str) -> None:
        self.loop, self.event, self.name = loop, event, name

    def dispatch(self, ev: Any) -> None:
        paths = {os.path.basename(str(getattr(ev, "src_path", "")))}
        paths.add(os.path.basename(str(getattr(ev, "dest_path", "") or "")))
        if self.name in paths:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.event.set)


def _stop(observer: Any) -> None:
    observer.stop()
    observer.join(2.0)


class LogFileSource:
    name = "file"

    def __init__(self, path: Path, resume: Position | None) -> None:
        self.path = path
        self.healthy = False
        self.error: str | None = None
        self._resume = resume
        self._first_start = resume is None
        self._fh: BinaryIO | None = None
        self._inode: int | None = None
        self._offset = 0
        self._last_read = 0
        """Bytes of whole lines the last read took (`busy_poll_s`)."""
        self._sig = b""
        self._observer: Any = None
        self._stopping: set[asyncio.Future[None]] = set()

    async def open(self) -> None:
        if not self.path.parent.is_dir():
            self.error = f"cannot follow {self.path}: directory {self.path.parent} does not exist"
            raise SourceUnavailable(self.error)
        self.healthy = True

    def _start_watch(self, event: asyncio.Event) -> None:
        from watchdog.observers import Observer

        observer = Observer()
        handler = _Wakeup(asyncio.get_running_loop(), event, self.path.name)
        observer.schedule(handler, str(self.path.parent), recursive=False)  # type: ignore[arg-type]
        observer.daemon = True
        observer.start()
        self._observer = observer

    def _stop_watch(self) -> None:
        """Switch watchdog off; its threads are stopped and joined off the event loop."""
        observer, self._observer = self._observer, None
        if observer is not None:
            stopping = asyncio.get_running_loop().run_in_executor(None, _stop, observer)
            self._stopping.add(stopping)
            stopping.add_done_callback(self._stopping.discard)

    def _open_current(self, first: bool) -> bool:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - kept open while following
        except FileNotFoundError:
            return False
        except OSError as exc:
            self.error = f"cannot read {self.path}: {exc.strerror or exc}"
            self.healthy = False
            return False
        st = os.fstat(fh.fileno())
        offset = 0
        resume = self._resume
        if resume is not None and resume.inode == st.st_ino and (resume.offset or 0) <= st.st_size:
            offset = resume.offset or 0
        elif first and self._first_start and st.st_size > FIRST_START_TAIL:
            fh.seek(st.st_size - FIRST_START_TAIL)
            fh.readline()
            offset = fh.tell()
        fh.seek(offset)
        self._fh, self._inode, self._offset, self._sig = fh, st.st_ino, offset, b""
        self._resume = None
        self.healthy, self.error = True, None
        return True

    def _rotated_old(self) -> Path | None:
        """After a restart: the file we were reading may now be `kern.log.1`."""
        resume = self._resume
        if resume is None or resume.inode is None:
            return None
        cand = self.path.with_name(self.path.name + ".1")
        with contextlib.suppress(OSError):
            if cand.stat().st_ino == resume.inode:
                return cand
        return None

    def _open_rotated(self, old: Path) -> None:
        resume = self._resume
        assert resume is not None
        fh = open(old, "rb")  # noqa: SIM115 - kept open while draining
        self._offset = resume.offset or 0
        fh.seek(self._offset)
        self._fh, self._inode, self._resume, self._sig = fh, resume.inode, None, b""

    def _read_lines(self, batch: Batch, reader: LineReader) -> bool:
        """Read what was added; True when a whole `CHUNK` came (more is waiting)."""
        fh = self._fh
        assert fh is not None
        data = fh.read(CHUNK)
        if not data:
            return False
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) < MAX_LINE:
                fh.seek(self._offset)  # wait for the rest of the line
                return False
            end = len(data) - 1
        fh.seek(self._offset + end + 1)
        self._sig = data[max(0, end + 1 - SIG_BYTES) : end + 1]
        inode = self._inode
        batch.place = lambda end: Position(source=self.name, inode=inode, offset=end)
        lines = data[: end + 1]
        put_lines(batch, lines, self._offset, reader)
        self._offset += len(lines)
        self._last_read = len(lines)
        return len(data) == CHUNK

    def _rewritten(self, fh: BinaryIO) -> bool:
        """Truncated (shorter than our offset) or rewritten (our last bytes are gone)."""
        if os.fstat(fh.fileno()).st_size < self._offset:
            return True
        sig = self._sig
        return bool(sig) and os.pread(fh.fileno(), len(sig), self._offset - len(sig)) != sig

    def _restart_if_rewritten(self, fh: BinaryIO) -> bool:
        """Go back to the start of a truncated or rewritten file; True when it was."""
        if not self._rewritten(fh):
            return False
        log.info("%s was truncated; reading from the start", self.path)
        self._offset, self._sig = 0, b""
        fh.seek(0)
        return True

    def _check_rotation(self) -> bool:
        """True when the open file is done for: the path names another inode, or is gone."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return st.st_ino != self._inode

    def _moved_on(self, cur: BinaryIO) -> bool:
        """Nothing new to read: True when that is because the file was truncated, rewritten
        (read again from the start) or rotated (the new file is opened next)."""
        if self._restart_if_rewritten(cur):
            return True
        if self._check_rotation():
            log.info("%s was rotated; following the new file", self.path)
            cur.close()
            self._fh = None
            return True
        return False

    async def batches(self) -> AsyncIterator[Batch]:
        from kernbot.core.formats.reader import LineReader

        reader = LineReader()
        wake = asyncio.Event()
        old = self._rotated_old()
        if old is not None:
            self._open_rotated(old)
        backlog = self._first_start
        first = True
        busy = False  # the last read found lines
        while True:
            if self._observer is None and not busy:
                self._start_watch(wake)
            if self._fh is None and not self._open_current(first):
                first = False
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_S):  # not wait_for: see below
                        await wake.wait()
                continue
            first = False
            batch = Batch(backlog=backlog)
            cur = self._fh
            assert cur is not None
            wake.clear()  # before the read: a write after it wakes the wait below
            self._restart_if_rewritten(cur)
            more = self._read_lines(batch, reader)
            if batch.items or batch.data:
                yield batch
                if more:  # a backlog: read on at once
                    continue
                if busy:  # lines again: poll while it grows, without watchdog
                    self._stop_watch()
                busy = True
                await asyncio.sleep(busy_poll_s(self._last_read))
                continue
            busy = False
            if self._observer is None:
                continue  # watchdog back on (loop top), then one more read
            if self._moved_on(cur):
                continue
            if backlog:
                backlog = False
                yield Batch(backlog=True)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that
            # arrives as `wake` is set (cpython gh-86296), and the agent then never stops.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await wake.wait()

    async def close(self) -> None:
        if self._observer is not None:
            self._stop_watch()
        if self._stopping:
            await asyncio.wait(self._stopping, timeout=2.0)
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self.healthy = False
