"""Follow /dev/kmsg from a point in time, so a test sees only the records it caused.

Other engineers' tests OOM-kill processes and flood sockets on the same machine at the same
time, so a test must start reading at "now" (seek to the end) and pick its own records by pid,
comm, cgroup or port. Each read() of /dev/kmsg returns exactly one record; EPIPE means the ring
buffer overwrote records we had not read yet (we carry on); EAGAIN means no more for now.
"""

from __future__ import annotations

import errno
import os
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

KMSG = "/dev/kmsg"
_READ_SIZE = 16384  # larger than any record (the kernel limit is about 8 KiB); too small -> EINVAL


@dataclass(frozen=True)
class KmsgRecord:
    """One /dev/kmsg record: `PRI,SEQ,TS_USEC,FLAGS;MESSAGE` (continuation lines dropped)."""

    seq: int
    ts_usec: int
    level: int
    facility: int
    message: str
    raw: str
    """The record exactly as read (header, message and ` KEY=value` lines), newline-terminated."""


def parse_record(raw: str) -> KmsgRecord | None:
    """Parse one record as /dev/kmsg returns it; None for anything else."""
    head, sep, rest = raw.partition(";")
    if not sep:
        return None
    fields = head.split(",")
    try:
        pri, seq, ts = int(fields[0]), int(fields[1]), int(fields[2])
    except (IndexError, ValueError):
        return None
    message = rest.split("\n", 1)[0]
    whole = raw if raw.endswith("\n") else raw + "\n"
    return KmsgRecord(seq, ts, pri & 7, pri >> 3, message, whole)


class KmsgTail:
    """Reads /dev/kmsg records written after it was opened (or after a given seq).

    Use as a context manager; `records` keeps everything read so far, in order.
    """

    def __init__(self, *, after_seq: int | None = None) -> None:
        self._fd = os.open(KMSG, os.O_RDONLY | os.O_NONBLOCK)
        self.records: list[KmsgRecord] = []
        self.lost = 0
        self.after_seq = after_seq
        if after_seq is None:
            os.lseek(self._fd, 0, os.SEEK_END)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> KmsgTail:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def poll(self) -> list[KmsgRecord]:
        """Read every record available now; returns the new ones (also appended to `records`)."""
        new: list[KmsgRecord] = []
        while True:
            try:
                data = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EPIPE:
                    self.lost += 1
                    continue
                raise
            if not data:
                break
            rec = parse_record(data.decode("utf-8", "replace"))
            if rec is None or (self.after_seq is not None and rec.seq <= self.after_seq):
                continue
            new.append(rec)
        self.records.extend(new)
        return new

    def wait_for(
        self, predicate: Callable[[KmsgRecord], bool], *, timeout: float
    ) -> KmsgRecord | None:
        """The first record (already read or arriving within `timeout` s) matching `predicate`."""
        for rec in self.records:
            if predicate(rec):
                return rec
        deadline = time.monotonic() + timeout
        while True:
            for rec in self.poll():
                if predicate(rec):
                    return rec
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            select.select([self._fd], [], [], min(left, 0.2))

    def messages(self) -> list[str]:
        return [r.message for r in self.records]


def last_seq() -> int:
    """The sequence number of the newest record in the ring buffer now (-1 if empty)."""
    newest = -1
    with KmsgTail(after_seq=-1) as tail:
        # SEEK_DATA would skip to the oldest; reading everything is cheap at test sizes.
        for rec in tail.poll():
            newest = rec.seq
    return newest


def kmsg_since(seq: int) -> list[str]:
    """Messages of every record with a sequence number greater than `seq` still in the buffer."""
    with KmsgTail(after_seq=seq) as tail:
        tail.poll()
        return tail.messages()


def kmsg_raw_since(seq: int) -> str:
    """Those records exactly as /dev/kmsg returns them (input for `kernbot scan` tests)."""
    with KmsgTail(after_seq=seq) as tail:
        tail.poll()
        return "".join(r.raw for r in tail.records)
