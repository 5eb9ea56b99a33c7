"""Scan a big kernel log fast by parsing only the regions that can hold an event.

A day of kern.log is millions of lines and almost none of them are about OOM kills or SYN
floods. Parsing every line costs microseconds each; finding a few fixed keywords with
`bytes.find` costs nanoseconds per line. So `detect_bytes` finds the keyword positions, backs
up a few lines before each (so the line reader sees the record a continuation line belongs to),
and feeds lines from there for as long as the detector has a report half read. Everything else
is skipped without being decoded. The result is the same as feeding every line
(`detect_bytes(data, fast=False)`), which the tests check on the corpus and on mixed logs.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from typing import cast

from kernbot.core.detector import DETECTORS, Detector, FinalRevisions
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


def _libc_memmem() -> Callable[..., int | None] | None:
    """libc's memmem(3): two to three times faster than `bytes.find` for these needles."""
    try:
        fn = ctypes.CDLL(None).memmem
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    return cast(Callable[..., int | None], fn)


_MEMMEM = _libc_memmem()
CHUNK = 2 << 20
"""Bytes searched for every needle before moving on: stays in the CPU cache."""


def _offsets_memmem(data: bytes, memmem: Callable[..., int | None]) -> set[int]:
    """All needles, one cache-sized chunk at a time (one pass over memory, not sixteen)."""
    found: set[int] = set()
    keep = ctypes.c_char_p(data)  # points into `data` itself (bytes are immutable: no copy)
    base = ctypes.cast(keep, ctypes.c_void_p).value or 0
    size = len(data)
    overlap = max(map(len, KEYWORDS)) - 1
    for chunk_start in range(0, size, CHUNK):
        chunk_end = min(chunk_start + CHUNK, size)
        limit = min(chunk_end + overlap, size)
        for word in KEYWORDS:
            off = chunk_start
            while True:
                hit = memmem(base + off, limit - off, word, len(word))
                if hit is None or hit - base >= chunk_end:
                    break
                found.add(hit - base)
                off = hit - base + 1
    return found


def candidate_offsets(data: bytes, *, use_libc: bool = True) -> list[int]:
    """Sorted byte offsets of every keyword occurrence."""
    if use_libc and _MEMMEM is not None and data:
        return sorted(_offsets_memmem(data, _MEMMEM))
    found: set[int] = set()
    find = data.find
    for word in KEYWORDS:
        pos = find(word)
        while pos >= 0:
            found.add(pos)
            pos = find(word, pos + 1)
    return sorted(found)


class _Feeder:
    """One LineReader and one Detector, fed line by line; collects final revisions."""

    def __init__(self, host: str | None, boot_id: str | None, year: int | None) -> None:
        self.reader = LineReader(host=host, boot_id=boot_id, year=year)
        self.detector = Detector(host=host, boot_id=boot_id)
        self.final = FinalRevisions()

    def line(self, text: str, lineno: int) -> None:
        for rec in self.reader.feed(text, lineno):
            self._records(rec)

    def _records(self, rec: Record) -> None:
        self.final.add(self.detector.feed(rec))

    def finish(self) -> list[Event]:
        for rec in self.reader.flush():
            self._records(rec)
        self.final.add(self.detector.flush())
        return self.final.events()


def iter_lines(data: bytes) -> Iterator[str]:
    """Every line of `data` decoded as UTF-8 (invalid bytes replaced), without its `\\n`."""
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return iter(lines)


def _is_continuation(data: bytes, start: int) -> bool:
    return data[start : start + 1] in (b" ", b"\t")


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
    feeder = _Feeder(host, boot_id, year)
    if not fast or JSON_PRETTY in data:
        for lineno, line in enumerate(iter_lines(data), 1):
            feeder.line(line, lineno)
        return feeder.finish()
    size = len(data)
    pos = 0  # first byte not yet fed; always at a line start
    lineno = 0  # lines before `pos`
    for cand in candidate_offsets(data):
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
        lineno += data.count(b"\n", pos, start)
        pos = start
        cand_end = data.find(b"\n", cand)
        cand_end = size if cand_end < 0 else cand_end
        after = 0
        detector = feeder.detector
        while pos < size:
            end = data.find(b"\n", pos)
            end = size if end < 0 else end
            lineno += 1
            feeder.line(data[pos:end].decode("utf-8", "replace"), lineno)
            pos = end + 1
            if pos > cand_end and not detector.pending:
                after += 1
                if after > AFTER_LINES:
                    break
            else:
                after = 0
        if pos >= size:
            break
    return feeder.finish()
