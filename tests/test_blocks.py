"""Runs of a report's plain lines fed at once (kernbot.core.blocks) give exactly the events of
feeding every line (`fast=False`), and the run pattern takes only lines the parser says None for."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernbot.core.blocks import WORDS, PlainRuns, _run_pattern, no_run_at
from kernbot.core.detector import Detector
from kernbot.core.events import Event, OomKillEvent
from kernbot.core.formats.reader import LineReader, read_lines
from kernbot.core.oom import lines as lines_mod
from kernbot.core.oom.lines import PLAIN_WORDS, TableHeader, is_plain, parse_line
from kernbot.core.oom.task_table import SEEN_ROWS, TableLayout, general_row, parse_row
from kernbot.core.prefilter import ByteScanner, detect_bytes

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
TEMPLATE = CORPUS / "oom-proxmox-5.15-cgv2-lxc-docker-memcg.txt"
PREFIX = "[Di Aug 12 03:54:03 2025] "
VICTIM = "3924112"


def dump(events: list[Event]) -> list[str]:
    return [json.dumps(e.model_dump(mode="json"), sort_keys=True) for e in events]


def messages() -> list[str]:
    """The real report as messages; an indented continuation line starts with `\\0`."""
    out = []
    for line in TEMPLATE.read_text().splitlines():
        out.append(line[len(PREFIX) :] if line.startswith(PREFIX) else "\0" + line.lstrip())
    return out


def stamp(usec: int) -> str:
    return f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}] "


def loop(reports: int, msgs: list[str] | None = None, step: int = 37) -> bytes:
    """Reports back to back in `[mono] msg` form, each its own victim, with a reaper line."""
    msgs = messages() if msgs is None else msgs
    out: list[str] = []
    usec = 1_000_000
    for k in range(reports):
        pid = str(4_000_000 + k)
        for msg in msgs:
            if msg.startswith("\0"):
                out.append(" " * 15 + msg[1:])
                continue
            usec += step
            out.append(stamp(usec) + msg.replace(VICTIM, pid))
        usec += 40_000
        out.append(
            stamp(usec) + f"oom_reaper: reaped process {pid} (php-fpm), now anon-rss:0kB, "
            "file-rss:0kB, shmem-rss:156088kB"
        )
        usec += 500_000
    return ("\n".join(out) + "\n").encode()


def scan(data: bytes, chunk: int) -> tuple[list[Event], int]:
    scanner = ByteScanner()
    out: list[Event] = []
    for at in range(0, len(data), chunk):
        out += scanner.feed(data[at : at + chunk])
    out += scanner.finish()
    assert scanner._plain is not None
    return out, scanner._plain.lines_fed


def check(data: bytes, *, min_fed: int = 1) -> list[Event]:
    """The fast path, whole and in chunks that cut runs anywhere, equals every line fed."""
    want = dump(detect_bytes(data, fast=False))
    for chunk in (len(data) + 1, 4096, 777):
        got, fed = scan(data, chunk)
        assert dump(got) == want, chunk
        assert fed >= min_fed, chunk  # the runs were taken: this test tests them
    return detect_bytes(data)


def test_loop_of_reports_goes_mostly_in_runs() -> None:
    data = loop(30)
    events = check(data, min_fed=data.count(b"\n") * 3 // 4)
    assert len(events) >= 30
    assert sum(isinstance(e, OomKillEvent) and len(e.tasks) > 5 for e in events) >= 30


def test_report_lines_inside_a_run_are_parsed() -> None:
    msgs = messages()
    at = next(i for i, m in enumerate(msgs) if m.startswith("\0file "))
    # a report line as an indented continuation, and words that make a line matter
    msgs[at:at] = [
        "\0Memory cgroup out of memory: Killed process 42 (x) total-vm:1kB, anon-rss:1kB",
        "\0Node 0 Normal free:1234kB min:1kB managed:4096kB",
    ]
    stack = next(i for i, m in enumerate(msgs) if "dump_stack+" in m)
    msgs[stack:stack] = [
        " ? oom killer 5 (a) has mm pinned by 1 (init)",
        "Tasks in /x are going to be killed due to memory.oom.group set",
        " unstable:0 writeback:0",
    ]
    check(loop(3, msgs))


def test_gap_in_time_inside_a_run() -> None:
    msgs = messages()
    data = loop(4, msgs).decode().splitlines()
    at = next(i for i, line in enumerate(data) if "filemap_fault" in line)
    # 40 s of silence before a stack frame (the rest of the log moves on too)
    shifted = []
    for i, line in enumerate(data):
        if i >= at and line.startswith("["):
            usec = round(float(line[1:13]) * 1e6) + 40_000_000
            shifted.append(stamp(usec) + line[15:])
        else:
            shifted.append(line)
    check(("\n".join(shifted) + "\n").encode())


def test_task_rows_of_unknown_layout() -> None:
    msgs = messages()
    header = next(i for i, m in enumerate(msgs) if m.startswith("[  pid  ]"))
    msgs[header + 1 : header + 1] = [
        "[  123]     0   123 9 9 9 9 9 9 extra columns",
        "[  124]     0   124",  # too few columns
        "[\u0661\u0662]     0   12    1    1    1    0    0 arabic-digits",
        "[  125]\t0\t125\t1\t1\t1\t0\t0\ttabs",
        "[  126]     0   126    1    1    1    0    0 name with  spaces  ",
    ]
    # a row before any table header: no layout yet
    msgs.insert(3, "[  127]     0   127    1    1    1    0    0 early")
    events = check(loop(3, msgs))
    assert isinstance(events[0], OomKillEvent)
    names = [t.name for t in events[0].tasks]
    assert "name with  spaces  " in names and "tabs" in names


def test_lines_the_reader_reads_its_slow_way() -> None:
    msgs = messages()
    stack = next(i for i, m in enumerate(msgs) if "dump_stack+" in m)
    msgs[stack:stack] = [
        " foo+0x1/0x2 [    1.000000] glued+0x1/0x2",  # a second record pasted on
        " host kernel: journal-style",
        " carriage+0x1/0x2\r",
        "[T123] caller id",
        "[nf_nat] module",
        "\u00e9t\u00e9 accented",
        "",
        "SYN flooding on port 80. Sending cookies.",
        "Possible SYN flooding on",
        "port 443. Sending cookies.",
    ]
    check(loop(3, msgs))


def test_long_run_of_unrelated_lines_closes_a_fragment() -> None:
    noise = [f" unrelated_frame_{i}+0x1/0x2" for i in range(900)]
    msgs = ["Memory cgroup stats for /x:", *noise, "Tasks state (memory values in pages):"]
    check(loop(2, msgs))


def test_stamp_width_changes_inside_a_run() -> None:
    msgs = messages()
    data = loop(2, msgs).decode().replace("[    1.", "[99999.")
    check(data.encode())
    lines = []
    usec = 99_999_999_000
    for i in range(300):
        usec += 7
        lines.append(stamp(usec) + ("Memory cgroup stats for /x:" if i == 0 else f" frame{i}"))
        if i % 3 == 0:
            lines.append(" " * (len(stamp(usec))) + f"stat{i} 1")
    check(("\n".join(lines) + "\nTask in /x killed as a result of limit of /x\n").encode())


def test_plain_shapes_never_parse_on_the_corpus() -> None:
    seen = 0
    for path in sorted(CORPUS.glob("*.txt")):
        for rec in read_lines(path.read_text().splitlines()):
            text = rec.text
            if is_plain(text) and not any(w in text for w in PLAIN_WORDS):
                seen += 1
                assert parse_line(text) is None, text
    assert seen > 500


PIECES = [
    "a", "Z", " ", "0", "7", ":", "=", "[", "]", "-", "_", ".", "(", ")", "\t", "\u0663", "\u00e9",
    *"OMKkoTsSmCPF", "pid", " cpuset=", "free:", "killed", "OOM", "process ", "Killed process ",
    "Task in ", "CPU: ", "oom-kill:", "oom_reaper: ", "Memory cgroup stats for ", "Mem-Info:",
    "managed:", "kB, limit ", "memory: usage ", "[ 12]", "[  pid  ]", " uid", " name",
]  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12))
def test_run_pattern_takes_only_plain_lines_the_reader_reads_fast(pieces: list[str]) -> None:
    text = "".join(pieces)
    line = "[    1.000037] " + text
    raw = (line + "\n").encode()
    m = _run_pattern(15).fullmatch(raw)
    if m is None or any(w in raw for w in WORDS):
        return
    assert is_plain(text)
    assert parse_line(text) is None
    (rec,) = LineReader().feed(line, 1)
    assert (rec.text, rec.fmt, rec.mono_usec) == (text, "dmesg", 1_000_037)


@pytest.mark.parametrize("text", ["anon 31154200576", " dump_stack+0x10/0x16", "[  19690]  0 1 x"])
def test_common_plain_lines_match(text: str) -> None:
    assert is_plain(text)
    assert _run_pattern(15).fullmatch(("[    1.000037] " + text + "\n").encode())
    assert _run_pattern(15).fullmatch((" " * 15 + text + "\n").encode())


HEADERS = [
    "[ pid ]   uid  tgid total_vm      rss cpu oom_adj name",
    "[ pid ]   uid  tgid total_vm      rss cpu oom_adj oom_score_adj name",
    "[ pid ]   uid  tgid total_vm      rss nr_ptes swapents oom_score_adj name",
    "[ pid ]   uid  tgid total_vm      rss nr_ptes nr_pmds swapents oom_score_adj name",
    "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
    "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents"
    " oom_score_adj name",
    # a column twice: the general path keeps the last
    "[  pid  ]   uid  tgid total_vm  rss  rss name",
]
ROW_PIECES = [
    " ", "  ", "\t", "0", "7", "123", "-5", "+5", "1_0", "\u0661", "x", "name", "a b", "\r", "\n",
    "\u00a0", "[", "]", "[  12]", "[1]", "[ 3902942]",
]  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(HEADERS), st.integers(0, 9), st.lists(st.sampled_from(ROW_PIECES)))
def test_row_read_in_one_match_equals_the_general_path(
    header: str, ints: int, pieces: list[str]
) -> None:
    parsed = parse_line(header)
    assert isinstance(parsed, TableHeader)
    layout = TableLayout(parsed.columns)
    row = "[  42]" + "".join(f" {i * 7 - 3}" for i in range(ints)) + "".join(pieces)
    assert parse_row(layout, row) == general_row(layout, row)
    tidy = "[  42]" + "".join(f"   {i * 1000}" for i in range(len(layout.numeric))) + " nm x "
    assert layout.plain_row.match(tidy)
    assert parse_row(layout, tidy) == general_row(layout, tidy)


WORD_PIECES = ["UID:", "12", "xUID:5", "_UID:3", " ", "\u00e9UID:7", "oom_score_adj:", "-3", ","]


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from([*WORD_PIECES, "aoom_score_adj:1", "\u0663UID:2", "UID", ":"])))
def test_word_search_is_a_leading_word_boundary(pieces: list[str]) -> None:
    text = "".join(pieces)
    for pattern in (lines_mod._KILLED_UID, lines_mod._KILLED_ADJ):
        want = re.compile(r"\b" + pattern.pattern).search(text)
        got = lines_mod._word_search(pattern, text)
        assert (want and (want.span(), want.groups())) == (got and (got.span(), got.groups()))


def test_rows_seen_again_are_the_rows_read_and_the_memory_is_bounded() -> None:
    parsed = parse_line(HEADERS[4])
    assert isinstance(parsed, TableHeader)
    layout = TableLayout(parsed.columns)
    row = "[  42]     0    42     5294      360    81920        0             0 systemd"
    first = parse_row(layout, row)
    assert first is not None and parse_row(layout, row) is first
    assert first == general_row(layout, row)
    for pid in range(SEEN_ROWS + 10):
        parse_row(layout, f"[{pid}] 0 {pid} 1 1 4096 0 0 x")
    assert len(layout.seen) <= SEEN_ROWS
    spaced = "[  7]  0 7 1 1 4096 0 0 x"
    assert parse_row(layout, spaced) == general_row(layout, "[7] 0 7 1 1 4096 0 0 x")


FUZZ_LINES = [
    "Call Trace:", "Code: x", "CPU: 1 PID: 2 Comm: a Not tainted 5.4.0 #1", " ? foo+0x1/0x2 [mod]",
    " bar [  1.000000] glued", "host kernel: x", "x\r", "[T12] caller", "[  5]  0 5 1 1 4096 0 0 n",
    "[  6]\t0 6 1 1 4096 0 0 t", "Possible SYN flooding on", "port 80. Sending cookies.",
    "SYN flooding on port 80. Sending cookies.", "Task in /a",
    "/b killed as a result of limit of /c", "Tasks state (memory values in pages):", "anon 5",
    "shmem 0", "sock: 1", "killed x", "OOM x", "\u00e9 x", "", "   ", "Memory cgroup stats for /x:",
    " free:3 x", "Normal free:1kB managed:2kB",
    "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
]  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_random_logs_of_report_and_hostile_lines(seed: int) -> None:
    """Report lines, lines that break runs, continuation lines of odd indents, gaps, backward
    and unpadded stamps, shuffled: runs give what every line fed gives, whole and in chunks."""
    rng = random.Random(seed)
    msgs = messages()
    in_runs = 0
    for _ in range(8):
        out: list[str] = []
        usec = rng.choice([1_000_000, 99_990_000_000])
        for _ in range(rng.randrange(50, 400)):
            msg = rng.choice(msgs) if rng.random() < 0.5 else rng.choice(FUZZ_LINES)
            if msg.startswith("\0") or rng.random() < 0.15:
                out.append(" " * rng.choice([15, 15, 14, 16]) + msg.lstrip("\0"))
                continue
            usec = max(0, usec + rng.choice([37, 37, 37, 1_000_000, 31_000_000, -5]))
            unpadded = f"[{usec // 1_000_000}.{usec % 1_000_000:06d}]"
            out.append((stamp(usec) if rng.random() < 0.97 else unpadded) + msg)
        data = ("\n".join(out) + "\n").encode()
        want = dump(detect_bytes(data, fast=False))
        for chunk in (len(data) + 1, rng.randrange(100, 5000)):
            got, fed = scan(data, chunk)
            assert dump(got) == want
            in_runs += fed
    assert in_runs > 100  # runs were taken


class _RecordingDetector(Detector):
    """A detector with a report open that takes every run and records what it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.fed: list[tuple[list[str], int, int, int]] = []

    @property
    def pending(self) -> bool:
        return True

    def feed_plain(self, texts: list[str], lo: int, hi: int, last_mono: int) -> bool:
        self.fed.append((list(texts), lo, hi, last_mono))
        return True


TAKE_TEXTS = [
    "anon 5", "shmem 0", " dump_stack+0x10/0x16", " ? foo+0x1/0x2 [mod]", "RIP: 0033:0x7f",
    "x [    2.000000] glued", "x[    3.000000] glued", "a [ 5] b", "a[", "x\r", "y\rz",
    "[  19690]     0 19690  42 630 98 0 0 a", "[  7]  0 7 1 1 4096 0 0 n [x]",
    "[  8]  0 8 1 1 4096 0 0 n[    4.000000] glued", "Code: x", "sock 1", "sock: 1", "k=v",
    "</TASK>", "]", "[",
]  # fmt: skip


def _reference_take(data: bytes, width: int, cont: int) -> tuple[int, list[str], int, int, int]:
    """What `take` must feed at offset 0: the full run pattern's lines, each line's stamp."""
    m = _run_pattern(width).match(data)
    assert m is not None
    lines = data[: m.end() - 1].decode().split("\n")
    stamps = [
        int(line[1 : width - 9]) * 1_000_000 + int(line[width - 8 : width - 2])
        for line in lines
        if line[0] == "["
    ]
    times = stamps + ([cont] if lines[0][0] == " " else [])
    last = stamps[-1] if stamps else cont
    return m.end(), [line[width:] for line in lines], min(times), max(times), last


@pytest.mark.parametrize("seed", range(4))
def test_take_feeds_the_full_patterns_lines(seed: int) -> None:
    """`take` (the quick pattern, its lines checked) feeds the lines, times and end of the full
    pattern's run, on runs of plain lines mixed with `[`, `\\r`, glued stamps (one character
    into a text too) and task rows, stamps out of order, indented lines of odd widths."""
    rng = random.Random(seed)
    quick = 0
    for _ in range(3000):
        out: list[str] = []
        for _ in range(rng.randrange(1, 12)):
            text = rng.choice(TAKE_TEXTS)
            if rng.random() < 0.3:
                out.append(" " * rng.choice([15, 15, 15, 14, 16]) + text)
            else:
                out.append(stamp(rng.randrange(1_000_000, 9_000_000)) + text)
        data = ("\n".join(out) + "\n").encode()
        reader = LineReader()
        reader.feed("[    1.500000] Call Trace:")
        detector = _RecordingDetector()
        runs = PlainRuns(reader, detector)
        if _run_pattern(15).match(data) is None:
            assert runs.take(data, 0, len(data), 0) is None
            continue
        end, texts, lo, hi, last = _reference_take(data, 15, 1_500_000)
        assert runs.take(data, 0, len(data), 0) == (end, len(texts), True)
        assert detector.fed == [(texts, lo, hi, last)]
        quick += "[" not in data[15:end].decode().replace("\n[", "") and b"\r" not in data
    assert quick > 100  # runs the quick pattern alone decides were among them


NO_RUN_TEXTS = [
    *TAKE_TEXTS, "CPU: 1 PID: 2", "CPU:", "CPx", "C", "memory: usage 1kB", "swap 1", "s=1",
    "Memory cgroup stats for /a:", "Tasks state (memory values in pages):", "T", "9 pages RAM",
    "[  pid  ]   uid  tgid total_vm", "[ 12]", "[12", "[ x]", "oom-kill:a=b", "o", "\u00e9", "\x01",
    "a.b", ".", "x. [ 1.000000] y", "", "\r", "] ", "K", "k", "killed", "OOM", "free:1",
]  # fmt: skip


def _prefix(rng: random.Random) -> str:
    """A stamp of some width, or one the reader does not take, or a piece of one."""
    usec = rng.randrange(0, 10 ** rng.choice([6, 8, 10, 10, 10, 13]))
    secs, frac = usec // 1_000_000, usec % 1_000_000
    return rng.choice(
        [
            *[stamp(usec)] * 6,
            f"[{secs}.{frac:06d}] ",
            f"[{secs:>12}.{frac:06d}] ",
            f"[{secs:>13}.{frac:06d}] ",
            f"[{secs}.{frac:05d}] ",
            f"[{secs}.{frac:06d}]",
            f"[{secs}. {frac:06d}] ",
            f"[ .{secs}.{frac:06d}] ",
            f"[{secs}.{frac:06d}.1] ",
            "[",
            "[ ",
        ]
    )


@pytest.mark.parametrize("seed", range(4))
def test_no_run_at_only_where_take_finds_none(seed: int) -> None:
    """`no_run_at` (a few byte tests before `take`) says no run only where `take` finds none,
    whatever the width of the last run's stamps: stamps of other widths, malformed ones, texts
    of every first byte the run patterns tell apart."""
    rng = random.Random(seed)
    said_no = took = 0
    for _ in range(6000):
        reader = LineReader()
        reader.feed("[    1.500000] Call Trace:")
        runs = PlainRuns(reader, _RecordingDetector())
        if rng.random() < 0.5:  # the last run's stamps of another width
            usec = rng.randrange(10 ** rng.choice([6, 10, 10, 12, 15]))
            head = f"[{usec // 1_000_000}.{usec % 1_000_000:06d}] anon 5\n".encode()
            assert runs.take(head, 0, len(head), 0) is not None
            assert runs.width == head.index(b"]") + 2
            runs.reset()  # another buffer
        lines = [_prefix(rng) + rng.choice(NO_RUN_TEXTS) for _ in range(rng.randrange(1, 4))]
        data = "\n".join(lines).encode() + rng.choice([b"\n", b""])
        if not data.startswith(b"["):
            continue
        eol = data.find(b"\n")
        if no_run_at(data, 0, len(data) if eol < 0 else eol, runs.width):
            said_no += 1
            assert runs.take(data, 0, len(data), 0) is None, data
        else:
            took += runs.take(data, 0, len(data), 0) is not None
    assert said_no > 300 and took > 500, (said_no, took)  # both ways, often
