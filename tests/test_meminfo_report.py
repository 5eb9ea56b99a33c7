"""`parse_report`'s shortcuts (lines no pattern can take, a cgroup v2 memory.stat block read in
one go) against what each line holds."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from kernbot.core.oom.meminfo_report import (
    _ANCHORS,
    _MEMCG_PREFIXES,
    _PREFIXES,
    MemReport,
    _v2_lines,
    _v2_values,
    parse_memcg_part,
    parse_report,
    parse_report_reference,
)


def test_v2_block_ends_at_the_first_other_line_which_is_read_as_usual() -> None:
    rep = parse_report(
        [
            " dump_stack+0x10/0x16",
            "Memory cgroup stats for /a:",
            "anon 2048",
            "  file 4096  ",
            "Memory cgroup stats for /a/b:",
            "anon 1024",
            "not a stat line",
            "shmem 8192",
            "#0111234 pages RAM",
            "[  19690]     0 19690    42446      630    98304        0             0 systemd",
            "77 reserved pages",
        ]
    )
    assert [(s.path, s.values_kb, s.line, s.v2) for s in rep.stats] == [
        ("/a", {"anon": 2, "file": 4}, 1, True),
        ("/a/b", {"anon": 1}, 4, True),
    ]
    assert rep.ram_pages == (1234, 8)  # a syslog `#011` (tab) before the digits
    assert rep.reserved_pages == (77, 10)


def test_slab_header_without_a_colon_still_opens_the_slab_table() -> None:
    rep = parse_report(["Unreclaimable slab info", "Name  Used  Total", "kmalloc-64  12KB  16KB"])
    assert [(c.name, c.used_kb, c.total_kb, c.line) for c in rep.slab_caches] == [
        ("kmalloc-64", 12, 16, 2)
    ]


def _fixture_lines() -> list[str]:
    here = Path(__file__).parent / "fixtures"
    out: list[str] = []
    for path in sorted([*here.glob("corpus/*.txt"), *here.glob("diagnosis/*.txt")]):
        out += path.read_text(encoding="utf-8", errors="replace").splitlines()
    return out


CRAFTED = [
    "kmem: usage 12kB, limit 9007199254740988kB, failcnt 0",
    "kmem.tcp: usage 0kB, limit 9007199254740988kB, failcnt 0",
    "memory+swap: usage 2048kB, limit 4096kB, failcnt 3",
    "swap: usage 0kB, limit 0kB, failcnt 0",
    "DMA free:15360kB min:20kB low:24kB high:28kB managed:15360kB",
    "HighMem free:100kB min:1kB low:2kB high:3kB managed:900kB",
    "Movable free:1kB min:1kB low:1kB high:1kB managed:1kB",
    "Device free:1kB min:1kB low:1kB high:1kB managed:1kB",
    "Normal: 3*4kB (UM) 1*8kB = 20kB",
    "Node 1 hugepages_total=2 hugepages_free=1 hugepages_surp=0 hugepages_size=2048kB",
    "Total swap = 1024kB",
    "Free swap  = 512kB",
    "12345 pages RAM",
    "٣٣ reserved pages",
    "77 total pagecache pages",
    "Unreclaimable slab info:",
    "Name                      Used          Total",
    "kmalloc-64  12KB  16KB",
    "Memory cgroup stats for /a: cache:4KB rss:8KB total_rss:8KB",
    "Memory cgroup stats for /b:",
    "anon 4096",
    " active_anon:1 inactive_anon:2 isolated_anon:0",
    " slab_reclaimable:3 slab_unreclaimable:4",
]
"""One line of every pattern `parse_report` reads, beside the fixtures' (some kinds are in no
fixture: kmem.tcp, HighMem, Movable...), so a pattern the shortcut skips shows."""
LINES = _fixture_lines() + CRAFTED
PIECES = ["#012", "#011", "\n", "\r", " ", "\u00a0", ":", "=", "kB", "*", "1", "٣", "a:1", "x"]


def _mutated(rng: random.Random, line: str) -> str:
    i = rng.randint(0, len(line))
    j = rng.randint(i, min(len(line), i + 8))
    return line[:i] + "".join(rng.choices(PIECES, k=rng.randint(0, 3))) + line[j:]


def _reports(rng: random.Random) -> list[list[str]]:
    """Every fixture report, each fixture and crafted line alone and mutated (20,000), and
    3,000 random runs of such lines (slab tables and memory.stat blocks opened and cut)."""
    here = Path(__file__).parent / "fixtures"
    reports = [
        path.read_text(encoding="utf-8", errors="replace").splitlines()
        for path in sorted([*here.glob("corpus/*.txt"), *here.glob("diagnosis/*.txt")])
    ]
    reports += [[line] for line in LINES]
    reports += [[_mutated(rng, rng.choice(LINES))] for _ in range(20_000)]
    for _ in range(3_000):
        run = [rng.choice(LINES) for _ in range(rng.randint(0, 12))]
        reports.append([_mutated(rng, x) if rng.random() < 0.3 else x for x in run])
    return reports


def test_the_shortcut_reads_what_the_general_path_reads() -> None:
    """`parse_report` (lines that can hold no number skipped by their first character and a
    few substring tests) against `parse_report_reference` (every line on the general path):
    equal reports on every fixture, on each fixture line and crafted line alone and mutated,
    and on random runs of such lines (slab tables and memory.stat blocks opened and cut)."""
    reports = _reports(random.Random(11))
    differ = [r for r in reports if parse_report(r) != parse_report_reference(r)]
    assert differ == []
    # and the shortcut is taken: most fixture lines are no memory line
    assert sum(parse_report([x]) == parse_report([]) for x in LINES) > len(LINES) // 2


def test_the_memcg_part_reads_what_the_general_path_reads_of_a_cgroup() -> None:
    """`parse_report(memcg=True)` (only lines beginning as a page counter, a stats header or
    the slab header goes the general path) against `parse_report_reference`: the counters,
    stats blocks and slab caches equal on every fixture, each fixture and crafted line alone
    and mutated, and random runs of them; and each of its prefixes is needed."""
    reports = _reports(random.Random(12))

    def part(rep: MemReport) -> tuple[object, ...]:
        return (rep.counters, rep.stats, rep.slab_caches)

    differ = [r for r in reports if part(parse_memcg_part(r)) != part(parse_report_reference(r))]
    assert differ == []
    assert parse_report(reports[0], memcg=True) == parse_memcg_part(reports[0])
    empty = part(MemReport())
    for prefix in _MEMCG_PREFIXES:
        held = [
            x
            for x in CRAFTED
            if x.startswith(prefix)
            and part(parse_report_reference([x, "kmalloc-64  12KB  16KB"])) != empty
        ]
        assert held, prefix


def test_every_prefix_begins_a_line_that_holds_numbers() -> None:
    """Each beginning the shortcut lets through is one some pattern needs (a slab cache row
    follows, which only the slab header makes a number)."""
    empty = parse_report([])
    assert {p[0] for p in _PREFIXES} == _ANCHORS
    for prefix in _PREFIXES:
        held = [
            x
            for x in CRAFTED
            if x.startswith(prefix)
            and parse_report_reference([x, "kmalloc-64  12KB  16KB"]) != empty
        ]
        assert held, prefix


def test_v2_block_read_in_one_go_is_read_as_line_by_line() -> None:
    """`_v2_values` (the block joined, one regex and a split) against `_v2_lines` (each line
    matched): the same values and the same end, whatever whitespace, digits or newlines."""
    rng = random.Random(12)
    words = ["anon", "file", "a_b", "Sock", ""]
    ends = ["", " ", "\t", "\r", "\u00a0", "#012", "\n", "x"]
    for _ in range(20_000):
        lines = [
            rng.choice(["", " ", "\t", "\x1c"])
            + rng.choice(words)
            + rng.choice([" ", "  ", ""])
            + rng.choice(["0", "1024", "99999", "٣٣", "-1", ""])
            + rng.choice(ends)
            for _ in range(rng.randint(0, 6))
        ]
        start = rng.randint(0, len(lines))
        joined: dict[str, str] = {}
        each: dict[str, str] = {}
        assert (_v2_values(joined, lines, start), joined) == (_v2_lines(each, lines, start), each)
        # and with a window narrower than the block, widened as the run fills it
        narrow: dict[str, str] = {}
        window = rng.randint(1, 3)
        assert (_v2_values(narrow, lines, start, window), narrow) == (
            _v2_lines({}, lines, start),
            each,
        )


def test_a_number_too_long_for_int_raises_as_when_every_value_was_converted() -> None:
    """The v2 values are converted when read (`StatsBlock.kb`), but a number `int()` refuses
    (longer than sys.get_int_max_str_digits()) still raises while the block is read, on both
    paths (joined, and line by line for a `#01x` escape), as when every value was converted."""
    big = "9" * (sys.get_int_max_str_digits() + 1)
    for tail in ("", "#011"):
        lines = ["Memory cgroup stats for /a:", "anon 4096" + tail, f"file {big}" + tail]
        with pytest.raises(ValueError, match="integer string conversion"):
            parse_report(lines)
        with pytest.raises(ValueError, match="integer string conversion"):
            parse_report_reference(lines)
    ok = parse_report(["Memory cgroup stats for /a:", "anon 4096", f"file {big[:-2]}"])
    assert ok.stats[0].kb(("anon",)) == {"anon": 4}


def test_the_values_asked_for_are_those_of_the_whole_block() -> None:
    """`StatsBlock.kb(keys)` (only those converted) equals `values_kb` cut to the keys, before
    and after `values_kb` was made, on every stats block of the fixtures and random runs."""
    rng = random.Random(13)
    keys = ("anon", "file", "shmem", "slab", "kernel", "rss", "cache", "total_rss", "sock")
    runs = [[rng.choice(LINES) for _ in range(rng.randint(0, 12))] for _ in range(3_000)]
    for _ in range(3_000):
        header = rng.choice(["Memory cgroup stats for /b:", CRAFTED[18]])
        stats = [f"{rng.choice(keys)} {rng.randint(0, 10**12)}" for _ in range(rng.randint(0, 8))]
        runs.append([header, *(_mutated(rng, x) if rng.random() < 0.1 else x for x in stats)])
    seen = 0
    for run in runs:
        for block in parse_report(run).stats:
            before = block.kb(keys)
            values = block.values_kb
            assert before == block.kb(keys) == {k: values[k] for k in keys if k in values}
            seen += bool(before)
    assert seen > 2_000
