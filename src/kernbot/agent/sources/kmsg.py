"""/dev/kmsg: the kernel's own ring buffer, one whole record per read(). The one reader of it:
the agent's source, `kernbot scan` without files and `kernbot doctor` all open it with
`open_kmsg` (one message when it cannot be read, naming the fix) and read with `read_ready`.

Non-blocking reads driven by the event loop's poll. EPIPE means the ring buffer overwrote records
since our last read: the sequence gap is counted as lost and reading carries on. After a restart,
records up to the saved (boot_id, seq) are skipped so nothing is handled twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from kernbot.agent.position import Position
from kernbot.agent.sources import Batch, Item, SourceUnavailable

log = logging.getLogger(__name__)

READ_SIZE = 16384
"""Larger than any record (the kernel caps one at ~8 KiB); a smaller buffer gives EINVAL."""
MAX_BATCH = 512

KMSG_PATH = Path("/dev/kmsg")


class KmsgUnreadable(SourceUnavailable):
    """/dev/kmsg cannot be read here: `why` (the cause) and `fix` (what to do instead)."""

    def __init__(self, path: Path, why: str, fix: str) -> None:
        super().__init__(f"cannot read {path}: {why}. {fix}")
        self.path = path
        self.why = why
        self.fix = fix


def _unreadable(path: Path, exc: OSError, proc_root: Path) -> KmsgUnreadable:
    if isinstance(exc, FileNotFoundError):
        return KmsgUnreadable(
            path,
            "it does not exist",
            "Mount the host's /dev/kmsg (hostPath, CharDevice); the agent can read the journal "
            "instead: KERNBOT_SOURCE=journal (or KERNBOT_FALLBACK_SOURCE=journal).",
        )
    why = exc.strerror or str(exc)
    if isinstance(exc, PermissionError):
        try:
            restrict = (proc_root / "sys/kernel/dmesg_restrict").read_text().strip()
        except OSError:
            restrict = ""
        if restrict == "1":
            why = f"{why} (kernel.dmesg_restrict=1 and no CAP_SYSLOG)"
    return KmsgUnreadable(
        path,
        why,
        "Run as root with CAP_SYSLOG (in a container: privileged), or allow everyone with "
        "`sysctl -w kernel.dmesg_restrict=0`; the agent can read the journal instead: "
        "KERNBOT_SOURCE=journal (or KERNBOT_FALLBACK_SOURCE=journal).",
    )


def open_kmsg(path: Path = KMSG_PATH, proc_root: Path = Path("/proc")) -> int:
    """A non-blocking fd on /dev/kmsg at its oldest record, or `KmsgUnreadable`.

    One probe read checks what opening cannot (a container runtime's device policy refuses the
    read, not the open); the fd is then rewound to the oldest record, so nothing is skipped.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _unreadable(path, exc, proc_root) from exc
    try:
        os.read(fd, READ_SIZE)
    except (BlockingIOError, BrokenPipeError):
        pass
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            os.close(fd)
            raise _unreadable(path, exc, proc_root) from exc
    with contextlib.suppress(OSError):  # every kernel since 3.5 can; a stand-in file too
        os.lseek(fd, 0, os.SEEK_SET)
    return fd


@dataclass(slots=True)
class Ready:
    """What one `read_ready` call got."""

    records: list[bytes] = field(default_factory=list)
    overwritten: int = 0
    """Times the kernel said records were overwritten before they were read (EPIPE)."""
    unreadable: int = 0
    """Records too long for the buffer (EINVAL), skipped."""
    caught_up: bool = False
    """True when the ring buffer has nothing more right now (EAGAIN) or the file ended."""


def read_ready(fd: int, limit: int = MAX_BATCH) -> Ready:
    """Up to `limit` raw records that can be read without blocking."""
    out = Ready()
    while len(out.records) < limit:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            out.caught_up = True
            break
        except BrokenPipeError:
            out.overwritten += 1
            continue
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                out.unreadable += 1
                continue
            raise
        if not data:
            out.caught_up = True
            break
        out.records.append(data)
    return out


def _seq_of(raw: str) -> int | None:
    head = raw.partition(";")[0].split(",")
    try:
        return int(head[1])
    except (IndexError, ValueError):
        return None


class KmsgSource:
    name = "kmsg"

    def __init__(
        self,
        path: Path,
        boot_id: str | None,
        resume: Position | None,
        proc_root: Path = Path("/proc"),
    ) -> None:
        self.path = path
        self.proc_root = proc_root
        self.boot_id = boot_id
        self.healthy = False
        self.error: str | None = None
        self._fd: int | None = None
        self._first_start = resume is None
        self._skip_through: int | None = None
        if resume is not None and resume.boot_id == boot_id and resume.seq is not None:
            self._skip_through = resume.seq
        self._last_seq: int | None = self._skip_through

    async def open(self) -> None:
        try:
            self._fd = open_kmsg(self.path, self.proc_root)
        except KmsgUnreadable as exc:
            self.error = str(exc)
            raise
        self.healthy = True

    async def batches(self) -> AsyncIterator[Batch]:
        from kernbot.core.formats.reader import parse_kmsg_record

        if self._fd is None:
            await self.open()
        fd = self._fd
        assert fd is not None
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(fd, readable.set)
        backlog = True
        try:
            while True:
                batch = Batch(backlog=backlog and self._first_start)
                ready = read_ready(fd)
                batch.garbled += ready.unreadable
                for data in ready.records:
                    raw = data.decode("utf-8", errors="replace")
                    seq = _seq_of(raw)
                    if seq is not None:
                        if self._skip_through is not None and seq <= self._skip_through:
                            continue
                        if self._last_seq is not None and seq > self._last_seq + 1:
                            batch.lost += seq - self._last_seq - 1
                        self._last_seq = seq
                        self._skip_through = None
                    try:
                        records = parse_kmsg_record(raw, self.boot_id)
                    except ValueError:
                        records = []
                    if not records or seq is None:
                        batch.garbled += 1
                    pos = Position(source=self.name, boot_id=self.boot_id, seq=self._last_seq)
                    batch.items.append(Item(records=records, position=pos))
                caught_up = ready.caught_up
                yield batch
                if caught_up:
                    backlog = False
                    readable.clear()
                    await readable.wait()
        finally:
            loop.remove_reader(fd)

    async def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.healthy = False
