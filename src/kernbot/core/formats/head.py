"""What a per-format prefix parser hands back to the line reader.

A tuple rather than a `Record` so each format only fills what its prefix carries; the reader adds
the stream-wide metadata (line number, default host, boot id) and splits embedded newlines.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from kernbot.core.record import Record


class Head(NamedTuple):
    text: str
    """The message with the transport prefix removed; may still hold `\\n` to be split."""
    fmt: str
    width: int = 0
    """Characters of prefix removed: continuation lines indented this far belong to this record."""
    level: int | None = None
    mono_usec: int | None = None
    wall: datetime | None = None
    host: str | None = None
    caller: str | None = None
    seq: int | None = None
    boot_id: str | None = None
    cursor: str | None = None


LEVEL_NAMES = {
    "emerg": 0,
    "alert": 1,
    "crit": 2,
    "err": 3,
    "warn": 4,
    "warning": 4,
    "notice": 5,
    "info": 6,
    "debug": 7,
}
"""util-linux `dmesg -x` / `--json -x` level names."""


def to_records(
    head: Head,
    *,
    lineno: int = 0,
    host: str | None = None,
    boot_id: str | None = None,
    cursor: str | None = None,
) -> list[Record]:
    """One `Record` per line of `head.text`, all sharing the head's metadata."""
    (text, fmt, _, level, mono_usec, wall, head_host, caller, seq, head_boot, head_cursor) = head
    if head_host is not None:
        host = head_host
    if head_boot is not None:
        boot_id = head_boot
    if head_cursor is not None:
        cursor = head_cursor
    if "\n" not in text:  # the common case, kept cheap for `kernbot scan`
        return [
            Record(text, level, seq, mono_usec, wall, host, caller, boot_id, cursor, fmt, lineno)
        ]
    lines = text.split("\n")
    if not lines[-1]:  # a record ending in a newline has no empty last line
        lines.pop()
    return [
        Record(line, level, seq, mono_usec, wall, host, caller, boot_id, cursor, fmt, lineno)
        for line in lines
    ]
