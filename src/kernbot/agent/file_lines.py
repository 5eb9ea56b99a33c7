"""A log file's batch of whole lines (`Batch.data`) read into records for the pipeline, the way
`kernbot scan` reads a file (issue 11).

The file source used to read each line into an `Item` (a decode, the line reader, a list, an
object per line: 10,000 a second in an OOM loop), and the pipeline fed the detector record by
record. Now the source hands over its bytes and the batch's reader, and the pipeline reads them
here: every line through the reader, except that while a report is pending a run of its plain
lines (stack, registers, memory.stat, task rows) goes to the detector in one step
(`kernbot.core.blocks`, as `ByteScanner` feeds it), ~90 % of an OOM report's lines. The
records, texts and counts are those of reading the lines one by one, and the pipeline sees each
line's end (or a run's), so its positions are too (the tests compare the two ways).
"""

from __future__ import annotations

from collections.abc import Iterator

from kernbot.agent.sources import Batch
from kernbot.core.blocks import PlainRuns
from kernbot.core.detector import Detector
from kernbot.core.formats.reader import LineReader
from kernbot.core.record import Record

_NONE: list[Record] = []
"""A run's records: it went to the detector already."""


def _reader(batch: Batch) -> LineReader:
    reader = batch.reader
    assert reader is not None, "a batch of bytes comes with its reader"
    return reader


def read_all(batch: Batch, texts: list[str]) -> list[list[Record]]:
    """The records of every line of `batch.data`, without the detector; their texts appended
    to `texts`. A line the reader refuses counts as garbled."""
    data = batch.data
    lines = data.decode("utf-8", "replace").split("\n")
    if data[-1] == 0x0A:  # else the last line was cut at the source's `MAX_LINE`
        lines.pop()
    feed = _reader(batch).feed
    read: list[list[Record]] = []
    for line in lines:
        try:
            records = feed(line)
        except ValueError:
            records = []
            batch.garbled += 1
        read.append(records)
        for rec in records:
            texts.append(rec.text)
    return read


def line_ends(data: bytes) -> list[int]:
    """The offset in `data` after each of its lines (the last perhaps cut short)."""
    ends: list[int] = []
    nl = data.find(b"\n")
    while nl >= 0:
        ends.append(nl + 1)
        nl = data.find(b"\n", nl + 1)
    if data[-1] != 0x0A:
        ends.append(len(data))
    return ends


class FileLines:
    """Reads batches of bytes for one pipeline; runs of plain lines go to its detector."""

    def __init__(self, detector: object) -> None:
        self._detector = detector if isinstance(detector, Detector) else None
        """Runs need the core's `Detector` (`feed_plain`); others get every line."""
        self._runs: PlainRuns | None = None
        self.in_runs = 0
        """Records fed in runs so far."""

    def _runs_of(self, reader: LineReader) -> PlainRuns | None:
        runs, detector = self._runs, self._detector
        if detector is not None and (runs is None or runs.reader is not reader):
            runs = self._runs = PlainRuns(reader, detector)
        if runs is not None:
            runs.reset()
        return runs

    def lines(self, batch: Batch, texts: list[str]) -> Iterator[tuple[list[Record], int]]:
        """(records, the offset in `batch.data` after the line) for each line, for the caller
        to detect in; a run of plain lines is fed to the detector here (while a report is
        pending) and comes out as one step without records. Every record's text is appended to
        `texts`; a line the reader refuses counts as garbled."""
        data = batch.data
        reader = _reader(batch)
        runs = self._runs_of(reader)
        feed = reader.feed
        size = len(data)
        pos = 0
        slow_until = 0  # a run some detector refused: read line by line up to here
        find = data.find
        while pos < size:
            end = find(b"\n", pos)
            if end < 0:
                end = size  # a line cut at the source's `MAX_LINE`
            if runs is not None and pos >= slow_until and runs.may_start(data, pos, end):
                took = runs.take(data, pos, size, 0)
                if took is not None:
                    run_end, count, fed = took
                    if fed:
                        texts += runs.texts
                        self.in_runs += count
                        pos = run_end
                        yield _NONE, run_end
                        continue
                    slow_until = run_end
            try:
                records = feed(data[pos:end].decode("utf-8", "replace"))
            except ValueError:
                records = []
                batch.garbled += 1
            for rec in records:
                texts.append(rec.text)
            pos = end + 1 if end < size else size
            yield records, pos
