"""/dev/kmsg: the kernel's own ring buffer, one whole record per read().

Non-blocking reads driven by the event loop's poll. EPIPE means the ring buffer overwrote records
since our last read: the sequence gap is counted as lost and reading carries on. After a restart,
records up to the saved (boot_id, seq) are skipped so nothing is handled twice.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from kernbot.agent.position import Position
from kernbot.agent.sources import Batch, Item, SourceUnavailable
from kernbot.agent.sources.facility import KERN, NotKernelLog, kmsg_facility

log = logging.getLogger(__name__)

READ_SIZE = 16384
"""Larger than any record (the kernel caps one at ~8 KiB); a smaller buffer gives EINVAL."""
MAX_BATCH = 512

DENIED_HELP = (
    "cannot read {path}: {err}. The agent needs CAP_SYSLOG (run as root, or a privileged "
    "container) or kernel.dmesg_restrict=0 (sysctl -w kernel.dmesg_restrict=0); alternatively "
    "read the journal instead: KERNBOT_SOURCE=journal, or KERNBOT_FALLBACK_SOURCE=journal."
)


def _seq_of(raw: str) -> int | None:
    head = raw.partition(";")[0].split(",")
    try:
        return int(head[1])
    except (IndexError, ValueError):
        return None


class KmsgSource:
    name = "kmsg"

    def __init__(self, path: Path, boot_id: str | None, resume: Position | None) -> None:
        self.path = path
        self.boot_id = boot_id
        self.healthy = False
        self.error: str | None = None
        self._fd: int | None = None
        self._first_start = resume is None
        self._skip_through: int | None = None
        if resume is not None and resume.boot_id == boot_id and resume.seq is not None:
            self._skip_through = resume.seq
        self._last_seq: int | None = self._skip_through
        self._not_kernel = NotKernelLog("/dev/kmsg")

    async def open(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            self.error = DENIED_HELP.format(path=self.path, err=exc.strerror or exc)
            raise SourceUnavailable(self.error) from exc
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
                caught_up = False
                while len(batch.items) < MAX_BATCH:
                    try:
                        data = os.read(fd, READ_SIZE)
                    except BlockingIOError:
                        caught_up = True
                        break
                    except BrokenPipeError:
                        continue  # overwritten records: the seq gap of the next read counts them
                    except OSError as exc:
                        if exc.errno == errno.EINVAL:
                            batch.garbled += 1
                            continue
                        raise
                    raw = data.decode("utf-8", errors="replace")
                    seq = _seq_of(raw)
                    if seq is not None:
                        if self._skip_through is not None and seq <= self._skip_through:
                            continue
                        if self._last_seq is not None and seq > self._last_seq + 1:
                            batch.lost += seq - self._last_seq - 1
                        self._last_seq = seq
                        self._skip_through = None
                    facility = kmsg_facility(raw)
                    if facility is not None and facility != KERN:
                        batch.not_kernel += 1
                        self._not_kernel.seen(facility, raw)
                        pos = Position(source=self.name, boot_id=self.boot_id, seq=self._last_seq)
                        batch.items.append(Item(records=[], position=pos))
                        continue
                    try:
                        records = parse_kmsg_record(raw, self.boot_id)
                    except ValueError:
                        records = []
                    if not records or seq is None:
                        batch.garbled += 1
                    pos = Position(source=self.name, boot_id=self.boot_id, seq=self._last_seq)
                    batch.items.append(Item(records=records, position=pos))
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
