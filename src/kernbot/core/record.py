"""One kernel log record, whatever transport it came through.

Every reader (dmesg text, syslog, journald, raw /dev/kmsg) turns its input into `Record`s so that
the detectors never see transport details. A record's `text` is always ONE line: a kernel record
with embedded newlines (Mem-Info, memory.stat dumps, `#012`/`\\x0a` escapes, dmesg's indented
continuation lines) becomes several `Record`s that share the same metadata.

A `NamedTuple`: immutable like the frozen dataclass it was, but `kernbot scan` makes one per line
of a log and a tuple is built five times faster (~0.15 us against ~0.75 us a line).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class Record(NamedTuple):
    text: str
    """The message, with every transport prefix removed (timestamps, host, `kernel:`, caller id)."""
    level: int | None = None
    """Syslog level 0..7 when the transport carries it (kmsg prio, dmesg -r/-x, journald
    PRIORITY)."""
    seq: int | None = None
    """/dev/kmsg sequence number when known."""
    mono_usec: int | None = None
    """Monotonic time since boot in microseconds (kmsg ts, dmesg `[s.us]`,
    _SOURCE_MONOTONIC_TIMESTAMP)."""
    wall: datetime | None = None
    """Wall-clock time when the format carries one (dmesg -T/iso, syslog, journald). May be
    naive."""
    host: str | None = None
    caller: str | None = None
    """CONFIG_PRINTK_CALLER id such as `T123` or `C1`."""
    boot_id: str | None = None
    cursor: str | None = None
    """journald __CURSOR of the entry this line came from."""
    fmt: str = ""
    """Name of the detected format, e.g. `kmsg`, `dmesg`, `dmesg-T`, `syslog`, `journal-json`."""
    lineno: int = 0
    """1-based line number in the input (0 when not from a file)."""
