"""A log file's batches handed over as bytes (`Batch.data`, issue 11: the pipeline reads them and
feeds runs of a report's plain lines at once) give exactly what the same lines read one by one
into `Item`s give (`read_items`, the file source's way before): the same events (JSON), the same
safe positions in the same order, the same counts and the same recent lines, on random logs cut
into random batches, with backlog batches and idle flushes in between."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_harness import FakeClock, RecordingOutbox

from kernbot.agent.history import History, RecentLines
from kernbot.agent.metrics import AgentMetrics
from kernbot.agent.pipeline import Pipeline, may_hold_event
from kernbot.agent.position import Position
from kernbot.agent.sources import Batch
from kernbot.agent.sources.logfile import put_lines, read_items
from kernbot.agent.stages import Advise
from kernbot.core.deferred import Deferred
from kernbot.core.detector import Detector, diagnose
from kernbot.core.events import Event
from kernbot.core.formats.reader import LineReader
from kernbot.core.prefilter import KEYWORDS
from test_blocks import FUZZ_LINES, loop, messages, stamp

BOOT = "boot-1"
FILLER = "eth0: link is busy, nothing to see here"
UNESCAPED = (
    '{"MESSAGE":"Memory cgroup out of memory: Killed\\u0020process 42 (x) total-vm:1kB, '
    'anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0",'
    '"_TRANSPORT":"kernel","PRIORITY":"3","__MONOTONIC_TIMESTAMP":"5000000"}'
)
"""A journal export's kernel line whose keyword only its JSON escape hides from the bytes."""
ODD_LINES = [
    FILLER,
    "SYN flooding on port 80. Sending cookies.",
    "a line ending in a carriage return\r",
    "two\rlines in one",
    "\u00e9t\u00e9 \udcff",
    UNESCAPED,
]


@dataclass
class Outcome:
    events: list[dict[str, Any]]
    safe: list[Position | None]
    """The safe position after each batch."""
    noted: list[Position]
    """Every position the pipeline made safe (`on_position`), in order."""
    counts: tuple[int, int, dict[str, int]]
    recent: list[str]
    in_runs: int


def _place(end: int) -> Position:
    return Position("file", inode=7, offset=end)


def _run(
    tmp: Path,
    data: bytes,
    cuts: list[int],
    *,
    as_bytes: bool,
    seed: int,
    backlog: int = 0,
    flushes: float = 0.1,
) -> Outcome:
    """Feed `data` cut after each offset in `cuts` (whole lines), as bytes or as items; batches
    ending before `backlog` are the first start's backlog; after a batch, an idle flush with
    probability `flushes` (a report cut short there is emitted as it stands)."""
    rng = random.Random(seed)  # the same flushes in both runs
    deferred: list[Event | Deferred] = []
    outbox = RecordingOutbox(tmp / "outbox.db")
    noted: list[Position] = []
    p = Pipeline(
        detector=Detector(host="h", boot_id=BOOT, advise=False, diagnose=False, defer=deferred),
        deferred=deferred,
        finish=diagnose,
        outbox=outbox,
        history=History(tmp / "history.db"),
        recent=RecentLines(100_000),
        metrics=AgentMetrics(),
        stages=[Advise()],
        on_position=noted.append,
        first_start=backlog > 0,
        boot_id=BOOT,
        clock=FakeClock(),
    )
    reader = LineReader()
    safe: list[Position | None] = []
    start = 0
    for end in cuts:
        batch = Batch(backlog=end <= backlog, place=_place)
        if as_bytes:
            put_lines(batch, data[start:end], start, reader)
        else:
            read_items(batch, data[start:end], start, reader)
        p.feed(batch)
        safe.append(p.safe_position)
        if rng.random() < flushes:
            p.flush_if_idle(0.0)
        start = end
    p.flush()
    safe.append(p.safe_position)
    st = p.stats
    return Outcome(
        events=outbox.puts,
        safe=safe,
        noted=noted,
        counts=(st.records_read, st.records_garbled, dict(st.events)),
        recent=p.recent.tail(100_000)[0],
        in_runs=st.records_in_runs,
    )


def _cuts(data: bytes, rng: random.Random, most: int) -> list[int]:
    """Where a file source's reads of up to `most` bytes end: after a whole line each (or at
    the end of the data, a line cut short)."""
    cuts: list[int] = []
    pos = 0
    while pos < len(data):
        want = pos + rng.randrange(1, most)
        end = data.rfind(b"\n", pos, want) + 1
        if end <= pos:
            end = data.find(b"\n", want) + 1 or len(data)
        cuts.append(end)
        pos = end
    return cuts


def _same(tmp: Path, data: bytes, cuts: list[int], seed: int, **how: Any) -> Outcome:
    want = _run(tmp / "items", data, cuts, as_bytes=False, seed=seed, **how)
    got = _run(tmp / "bytes", data, cuts, as_bytes=True, seed=seed, **how)
    assert json.dumps(got.events) == json.dumps(want.events)
    assert got.safe == want.safe
    assert got.noted == want.noted
    assert got.counts == want.counts
    assert got.recent == want.recent
    assert want.in_runs == 0
    return got


def test_a_loop_of_reports_goes_mostly_in_runs(tmp_path: Path) -> None:
    data = loop(20)
    got = _same(tmp_path, data, _cuts(data, random.Random(1), 40_000), seed=1, flushes=0.0)
    lines = data.count(b"\n")
    assert got.counts[0] == lines
    assert got.in_runs > lines * 3 // 4
    assert got.counts[2]["oom_kill"] >= 20


def _message(rng: random.Random, msgs: list[str]) -> str:
    roll = rng.random()
    if roll < 0.5:
        return rng.choice(msgs)
    if roll < 0.8:
        return rng.choice(FUZZ_LINES)
    return FILLER if roll < 0.95 else rng.choice(ODD_LINES)


def _random_log(rng: random.Random) -> bytes:
    """Report lines (now and then a whole report), run-breaking lines, filler without a
    keyword, carriage returns, odd indents, gaps and backward stamps; the last line perhaps
    without its newline (a line the source cut at `MAX_LINE`)."""
    msgs = messages()
    picked: list[str] = []
    for _ in range(rng.randrange(100, 600)):
        if rng.random() < 0.04:
            picked += msgs
        picked.append(_message(rng, msgs))
    out: list[str] = []
    usec = rng.choice([1_000_000, 99_990_000_000])
    for msg in picked:
        if msg == UNESCAPED:
            out.append(msg)
        elif msg.startswith("\0") or rng.random() < 0.15:
            out.append(" " * rng.choice([15, 15, 14, 16]) + msg.lstrip("\0"))
        else:
            usec = max(0, usec + rng.choice([37, 37, 37, 1_000_000, 31_000_000, -5]))
            out.append(stamp(usec) + msg)
    text = "\n".join(out) + ("\n" if rng.random() < 0.8 else "")
    return text.encode("utf-8", "surrogateescape")


@pytest.mark.parametrize("seed", range(8))
def test_random_logs_cut_into_random_batches(tmp_path: Path, seed: int) -> None:
    """Random logs cut into batches of whole lines at random sizes, a backlog first in every
    other one, idle flushes between batches."""
    rng = random.Random(seed)
    in_runs = 0
    for round_ in range(4):
        data = _random_log(rng)
        cuts = _cuts(data, rng, rng.choice([300, 3000, 40_000]))
        backlog = cuts[len(cuts) // 3] if round_ % 2 else 0
        got = _same(tmp_path / str(round_), data, cuts, seed=seed, backlog=backlog)
        in_runs += got.in_runs
    assert in_runs > 100, in_runs  # runs were taken: this test tests them


def test_a_keyword_only_unescaping_shows_is_detected(tmp_path: Path) -> None:
    """A batch whose bytes hold no keyword is only read, unless a record's text holds one
    (a JSON escape hid it): then it goes to the detector as the per-line path sends it."""
    lines = [stamp(1_000_000 + i) + FILLER for i in range(5)] + [UNESCAPED]
    data = ("\n".join(lines) + "\n").encode()
    assert not any(k in data for k in KEYWORDS)
    (rec,) = LineReader().feed(UNESCAPED)
    assert may_hold_event(rec.text)
    got = _same(tmp_path, data, [len(data)], seed=0)
    assert [e["kind"] for e in got.events] == ["oom_kill"]
    assert got.safe[-1] == _place(len(data))


def test_only_lines_a_carriage_return_ends_are_read_one_by_one() -> None:
    reader = LineReader()
    plain, cr = Batch(), Batch()
    put_lines(plain, b"[    1.000000] a\n", 10, reader)
    assert plain.data == b"[    1.000000] a\n" and plain.start == 10 and not plain.items
    put_lines(cr, b"[    2.000000] b\r\n[    3.000000] c\n", 27, reader)
    assert not cr.data and [i.end for i in cr.items] == [45, 62]
