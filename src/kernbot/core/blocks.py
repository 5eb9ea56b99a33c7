"""Feed a run of an OOM report's plain lines (stack, registers, memory.stat, task rows) at once.

Inside a report most lines mean nothing to the OOM parser: `parse_line` says None for them, and
the report only keeps their text (and reads task rows by the table's header). Fed one by one,
each costs a `Record`, two detector calls and the parser's tests (~3.5 us a line). Here one
regular expression over the bytes recognises a whole run of them, and the run goes to the
detectors as a list of texts (`Detector.feed_plain`) with the line reader's state set as if it
had read them (`LineReader.took_lines`).

Exact by construction, line by line (the tests compare with feeding every line): a line is in a
run only if
- `LineReader.feed` would read it on its fast path into one `dmesg` record: a `[secs.micros] `
  stamp of the run's width or an indented continuation of the record before it, no `\\r`, no
  second stamp glued on, no caller id, no ` kernel: ` (`READER_WORDS`);
- its text has one of the OOM parser's plain shapes (`kernbot.core.oom.lines.is_plain`: the
  first character, no `:`/`=` after some, a task row's `[ pid]`), and holds no detector's
  `plain_words`, so `parse_line` says None and no SYN line starts or ends there.
The pattern is tried in two steps: a quick one (one-byte scans, no test for `\\r` or glued
stamps) takes every line the full one takes and more; where the run it found holds no `\\r`
and no `[` but its stamps' and task rows' first, the full one would take the same lines, which
a `str.count` and an `in` tell at C speed; otherwise the full pattern decides. Words are found
with memmem (`kernbot.core.bytesearch`) over a window of lines ahead, once, and a run stops
before the first line holding one. A detector that must see the lines one by one (a gap in
time, a long run of unrelated lines, a wrapped line waiting for its tail) refuses, and the
caller feeds that run line by line.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from typing import NamedTuple

from kernbot.core.bytesearch import find_all
from kernbot.core.detector import DETECTORS, Detector
from kernbot.core.formats.reader import LineReader
from kernbot.core.oom.lines import PLAIN_ANY_FIRST, PLAIN_C_NOT, PLAIN_NO_COLON_FIRST

READER_WORDS = (" kernel: ",)
"""A line holding one goes through the reader's general path (`journalctl -o short-monotonic`)."""
_ALL_WORDS = dict.fromkeys((*READER_WORDS, *(w for d in DETECTORS for w in d.plain_words)))
WORDS: tuple[bytes, ...] = tuple(w.encode() for w in _ALL_WORDS)
WINDOW = 32 << 10
"""Bytes of lines searched for `WORDS` at a time (a few hundred lines)."""
MAX_RUN = 256
"""Lines fed in one step at most (a task table of a big host is thousands)."""

_STAMP = re.compile(rb"\[ {0,12}\d{1,12}\.\d{6}\] ")
_NOT_GLUED = rb"\[(?! {0,12}\d{1,12}\.\d{6}\] )"


def _chars(chars: frozenset[str]) -> bytes:
    return b"[" + b"".join(re.escape(c.encode()) for c in sorted(chars)) + b"]"


def _tail(extra: bytes) -> bytes:
    """The rest of a line: no newline, `\\r` or stamp glued on (nor `extra`)."""
    cls = rb"[^\n\r\[" + extra + rb"]*"
    return cls + rb"(?:" + _NOT_GLUED + cls + rb")*"


def _quick_tail(extra: bytes) -> bytes:
    """`_tail` without its tests for `\\r` and glued stamps: the regex engine's loop for one
    excluded byte instead of a set's (with `extra`, a set again)."""
    return rb"[^\n" + extra + rb"]*"


def _text(tail: Callable[[bytes], bytes]) -> bytes:
    return (
        rb"(?:"
        + _chars(PLAIN_ANY_FIRST)
        + tail(b"")
        + rb"|"
        + _chars(PLAIN_NO_COLON_FIRST)
        + tail(b":=")
        + rb"|C(?!"
        + re.escape(PLAIN_C_NOT[1:].encode())
        + rb")"
        + tail(b"")
        + rb"|\[ *\d+\]"
        + tail(b"")
        + rb")"
    )


_TEXT = _text(_tail)
_QUICK_TEXT = _text(_quick_tail)
"""`_TEXT` that takes a `\\r` and a `[` anywhere: every line `_TEXT` takes, and more. Where a
run of its lines holds neither (a `[` only as the first character of a text: a task row's),
`_TEXT` takes the very same lines (`PlainRuns.take` checks); stack and memory.stat runs are
matched in half the time."""


def _lines_pattern(width: int, text: bytes) -> re.Pattern[bytes]:
    digits = width - 10  # `[` blanks and digits `.` six digits `] `
    stamp = b""
    if 1 <= digits <= 24:
        stamp = rb"\[(?= {0,12}\d{1,12}\.)[ \d]{%d}\.\d{6}\] |" % digits
    indent = rb" {%d}(?= *[!-~])" % width
    return re.compile(rb"(?:(?:" + stamp + indent + rb")" + text + rb"\n){1,%d}" % MAX_RUN)


class _RunPatterns(NamedTuple):
    """The run patterns of one prefix width: `quick` first, `full` where its lines need it."""

    width: int
    quick: re.Pattern[bytes]
    full: re.Pattern[bytes]
    indent: str
    """A newline and the indent: what splits a run of indented lines into their texts."""


_RUNS: dict[int, _RunPatterns] = {}


def _run_patterns(width: int) -> _RunPatterns:
    """Runs of lines whose prefix is `width` wide: stamped or indented continuation lines."""
    found = _RUNS.get(width)
    if found is None:
        found = _RUNS[width] = _RunPatterns(
            width,
            _lines_pattern(width, _QUICK_TEXT),
            _lines_pattern(width, _TEXT),
            "\n" + " " * width,
        )
    return found


def _run_pattern(width: int) -> re.Pattern[bytes]:
    """A run of lines whose prefix is `width` wide: stamped or indented continuation lines."""
    return _run_patterns(width).full


_ANY, _NO_COLON, _C, _ROW = 1, 2, 3, 4
_FIRST = bytes(
    _ANY if chr(c) in PLAIN_ANY_FIRST
    else _NO_COLON if chr(c) in PLAIN_NO_COLON_FIRST
    else _C if c == 0x43
    else _ROW if c == 0x5B
    else 0
    for c in range(256)
)  # fmt: skip
"""What the first byte of a text says about the first line of a run (`_QUICK_TEXT`): 0 never."""
_ROW_HEAD = re.compile(rb"\[ *\d+\]")


def no_run_at(data: bytes, pos: int, eol: int, width: int) -> bool:
    """True only where `PlainRuns.take` at `pos` (a line starting with `[` and ending at `eol`)
    finds no run when the last run's prefix was `width` wide (`PlainRuns.width`): its stamp, if
    it has one, is that wide (a `.` where that width has it and none before: a stamp's `.` is
    the first byte after its blanks and digits), and its text does not start the way the quick
    pattern's first line must. A few byte tests instead of the two regexes and the calls of a
    failed `take`, for the lines of a report the parser reads one by one; False where that is
    not sure (`take` decides)."""
    at = pos + width
    if at > eol or data[at - 9] != 0x2E or data.find(b".", pos + 1, at - 9) >= 0:
        return False
    if at == eol:  # no text: no run
        return True
    kind = _FIRST[data[at]]
    if kind == _ANY:
        return False
    if kind == _NO_COLON:
        return data.find(b":", at, eol) >= 0 or data.find(b"=", at, eol) >= 0
    if kind == _C:
        return data.startswith(b"PU: ", at + 1)
    if kind == _ROW:
        return _ROW_HEAD.match(data, at, eol) is None
    return True


def _usec(stamp: str, width: int) -> int:
    return int(stamp[1 : width - 9]) * 1_000_000 + int(stamp[width - 8 : width - 2])


def _stamped(lines: list[str], chunk: str, brackets: int) -> tuple[int, str]:
    """How many of `lines` (`chunk` split, each stamped or indented; `brackets` the number of
    `[` in it) are stamped, and the least line where all are (the least stamp: `[` > ` `)."""
    first = lines[0][0] == "["
    if brackets == first:  # the first line's stamp at most
        return brackets, lines[0]
    low = min(lines)
    if low[0] == "[":  # all (found without a 2-byte count: ~3x as long)
        return len(lines), low
    return chunk.count("\n[") + first, low


def _full_takes(chunk: str, texts: list[str], stamped: int, brackets: int) -> bool:
    """Whether `_TEXT` takes every line of `chunk` (lines `_QUICK_TEXT` took; `texts` their
    texts): none holds a `\\r`, nor a `[` but a stamp's or a task row's first."""
    if "\r" in chunk:
        return False
    return brackets == stamped or all(t.find("[", 1) < 0 for t in texts)


def _stamp_range(lines: list[str], width: int) -> tuple[int, int, int]:
    """The least and greatest stamp (in microseconds) of the stamped ones among `lines` (some
    are) and the index of the last of them."""
    stamps = [line[:width] for line in lines if line[0] == "["]
    i = len(lines) - 1
    while lines[i][0] != "[":
        i -= 1
    return _usec(min(stamps), width), _usec(max(stamps), width), i


class PlainRuns:
    """Finds runs of plain lines in one buffer of whole lines (`reset` for the next) and feeds
    them to one reader's and one detector's state."""

    def __init__(self, reader: LineReader, detector: Detector) -> None:
        self.reader = reader
        self.detector = detector
        self._hits: list[int] = []
        """Offsets of `WORDS` in the window searched last, sorted."""
        self._start = 0
        self._until = 0
        self._patterns = _run_patterns(15)
        """The patterns of the prefix width of the last run that started with a stamp
        (`[    1.000000] `)."""
        self.lines_fed = 0
        """Lines fed in runs so far (tests and benchmarks read it)."""
        self.texts: list[str] = []
        """The records' texts of the run `take` fed last (the agent keeps every line's text)."""

    @property
    def width(self) -> int:
        """The prefix width of the last run that started with a stamp (`no_run_at`)."""
        return self._patterns.width

    def reset(self) -> None:
        self._hits, self._start, self._until = [], 0, 0

    def may_start(self, data: bytes, pos: int, eol: int) -> bool:
        """Whether `take` may find a run at the line from `pos` to `eol`: it starts with a blank
        or a `[` that `no_run_at` does not rule out (the last run's width)."""
        first = data[pos]
        return first == 0x20 or (
            first == 0x5B and not no_run_at(data, pos, eol, self._patterns.width)
        )

    def _limit(self, data: bytes, pos: int, size: int) -> int:
        """Where a run starting at `pos` must stop: the start of the first line at or after
        `pos` that holds a word, or the end of the window searched."""
        if not self._start <= pos < self._until:
            nl = data.find(b"\n", min(pos + WINDOW, size - 1), size)
            until = size if nl < 0 else nl + 1
            self._hits, self._start, self._until = find_all(data, WORDS, pos, until), pos, until
        hits = self._hits
        i = bisect_left(hits, pos)
        if i == len(hits):
            return self._until
        return data.rfind(b"\n", pos, hits[i]) + 1

    def _match(self, data: bytes, pos: int, size: int) -> tuple[int, _RunPatterns] | None:
        """The end of the lines at `pos` that have a run's (quick) shape, and the patterns of
        their prefix width."""
        if data[pos] == 0x20:  # ` `: continues the record before
            width = self.reader.plain_width() or 0
            if not width:
                return None
            patterns = _run_patterns(width)
            m = patterns.quick.match(data, pos, size)
            return None if m is None else (m.end(), patterns)
        patterns = self._patterns  # `[`: most runs have the last run's width
        m = patterns.quick.match(data, pos, size)
        if m is None:
            stamp = _STAMP.match(data, pos)
            if stamp is None or stamp.end() - pos == patterns.width:
                return None
            patterns = _run_patterns(stamp.end() - pos)
            m = patterns.quick.match(data, pos, size)
            if m is None:
                return None
            self._patterns = patterns
        if self.reader.plain_width() is None:
            return None
        return m.end(), patterns

    def take(self, data: bytes, pos: int, size: int, lineno: int) -> tuple[int, int, bool] | None:
        """A run of plain lines at `pos` (which holds `[` or a blank) while the detector is
        pending: (its end, its line count, whether it was fed); None when there is none. A run
        not fed must be fed line by line."""
        if not self.detector.pending:  # first: outside a report every line may run on
            return None
        found = self._match(data, pos, size)
        if found is None:
            return None
        end, patterns = found
        width = patterns.width
        limit = self._limit(data, pos, size)
        if limit < end:  # a line with a word: the run stops before it (lines match one by one)
            if limit <= pos:
                return None
            end = limit
        chunk = data[pos : end - 1].decode("utf-8", "replace")
        brackets = chunk.count("[")
        if brackets == (data[pos] == 0x5B) and "\r" not in chunk:
            # Every line indented but perhaps the first, no `[` but its stamp: the full
            # pattern's lines (`_full_takes`), the texts what follows each line's prefix.
            return self._feed_indented(chunk, end, patterns, lineno)
        lines = chunk.split("\n")
        texts = [line[width:] for line in lines]
        stamped, low = _stamped(lines, chunk, brackets)
        if not _full_takes(chunk, texts, stamped, brackets):
            m = patterns.full.match(data, pos, size)  # it stops where the quick one did or before
            if m is None:
                return None
            end = min(m.end(), limit)
            chunk = data[pos : end - 1].decode("utf-8", "replace")
            lines = chunk.split("\n")
            texts = [line[width:] for line in lines]
            stamped, low = _stamped(lines, chunk, chunk.count("["))
        reader = self.reader
        n = len(lines)
        last_head: tuple[str, int, int] | None = None
        if stamped == n:  # of one prefix width, so the lines sort by their stamps
            lo, hi = _usec(low, width), _usec(max(lines), width)
            last = _usec(lines[-1], width)
            last_head = (texts[-1], width, last)
        elif stamped == 1 and lines[0][0] == "[":  # the first only (a memory.stat block's)
            lo = hi = last = _usec(lines[0], width)
            last_head = (texts[0], width, last)
        elif stamped:
            lo, hi, i = _stamp_range(lines, width)
            last = _usec(lines[i], width)
            last_head = (texts[i], width, last)
            if lines[0][0] == " ":
                cont = reader.plain_mono()
                assert cont is not None  # plain_width() said so
                lo, hi = min(lo, cont), max(hi, cont)
        else:
            cont = reader.plain_mono()
            assert cont is not None
            lo = hi = last = cont
        return self._feed(texts, lo, hi, last, head=last_head, end=end, lineno=lineno)

    def _feed_indented(
        self, chunk: str, end: int, patterns: _RunPatterns, lineno: int
    ) -> tuple[int, int, bool]:
        """`take` of a run of lines all indented, or all but the first (stamped)."""
        width = patterns.width
        texts = chunk[width:].split(patterns.indent)
        if chunk[0] == "[":
            lo = _usec(chunk, width)
            return self._feed(texts, lo, lo, lo, head=(texts[0], width, lo), end=end, lineno=lineno)
        cont = self.reader.plain_mono()
        assert cont is not None  # plain_width() said so
        return self._feed(texts, cont, cont, cont, head=None, end=end, lineno=lineno)

    def _feed(
        self,
        texts: list[str],
        lo: int,
        hi: int,
        last: int,
        *,
        head: tuple[str, int, int] | None,
        end: int,
        lineno: int,
    ) -> tuple[int, int, bool]:
        """Feed a run's `texts` at times within [`lo`, `hi`], the last at `last`; `head` the
        last stamped line's (`LineReader.took_lines`)."""
        n = len(texts)
        if not self.detector.feed_plain(texts, lo, hi, last):
            return end, n, False
        self.reader.took_lines(lineno + n, head)
        self.lines_fed += n
        self.texts = texts
        return end, n, True
