"""`parse_report`'s shortcuts (lines no pattern can take, a cgroup v2 memory.stat block read in
one go) against what each line holds."""

from __future__ import annotations

import random
from pathlib import Path

from kernbot.core.oom.meminfo_report import _may_hold_numbers, _v2_lines, _v2_values, parse_report


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


LINES = _fixture_lines()
PIECES = ["#012", "#011", "\n", "\r", " ", "\u00a0", ":", "=", "kB", "*", "1", "٣", "a:1", "x"]


def test_a_line_skipped_as_holding_no_numbers_gives_none() -> None:
    """`_may_hold_numbers` skips only lines that no branch of the general path would take, on
    every fixture line and on mutations of them."""
    rng = random.Random(11)
    mutated = []
    for _ in range(20_000):
        line = rng.choice(LINES)
        i = rng.randint(0, len(line))
        j = rng.randint(i, min(len(line), i + 8))
        mutated.append(line[:i] + "".join(rng.choices(PIECES, k=rng.randint(0, 3))) + line[j:])
    skipped = [raw for raw in LINES + mutated if not _may_hold_numbers(raw)]
    assert len(skipped) > 1000
    assert [raw for raw in skipped if parse_report([raw]) != parse_report([])] == []


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
        joined: dict[str, int] = {}
        each: dict[str, int] = {}
        assert (_v2_values(joined, lines, start), joined) == (_v2_lines(each, lines, start), each)
