"""`parse_report`'s shortcuts (lines no pattern can take, a cgroup v2 memory.stat block read in
one go) against what each line holds."""

from __future__ import annotations

from kernbot.core.oom.meminfo_report import parse_report


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
