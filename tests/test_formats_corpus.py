"""Every corpus file parses without loss, and chosen lines of each come out exactly as expected.

`SAMPLES` has an entry for every file in tests/fixtures/corpus (a new file without one fails
`test_every_corpus_file_has_samples`). Each sample is (line number, fmt, expected text, extra
fields); the text was read off the file by hand. Texts of very long lines are given as a
(start, end) pair.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from kernbot.core.formats.kmsg import unescape
from kernbot.core.formats.reader import is_kernel, read_lines
from kernbot.core.record import Record

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
YEAR = 2024

Text = str | tuple[str, str]
SAMPLES: dict[str, list[tuple[int, str, Text, dict[str, Any]]]] = {
    "oom-3.2-rc3-global-oom_adj-era.txt": [
        # [  283.473722] Out of memory: Kill process 11341 (xfs_db) score 944 or sacrifice child
        (
            109,
            "dmesg",
            "Out of memory: Kill process 11341 (xfs_db) score 944 or sacrifice child",
            {"mono_usec": 283_473_722},
        ),
    ],
    "oom-4.0-arm32-qemu-global-nr_pmds.txt": [
        (55, "plain", "Out of memory: Kill process 782 (oom) score 716 or sacrifice child", {}),
    ],
    "oom-4.20.12-x86-global-no-oomkill-line.txt": [
        # dmesg's continuation line, indented to the prefix width
        (
            32,
            "dmesg",
            " active_file:71 inactive_file:0 isolated_file:0",
            {"mono_usec": 81399968304},
        ),
        (36, "dmesg", " free:23001 free_pcp:0 free_cma:0", {"mono_usec": 81399968304}),
        (
            115,
            "dmesg",
            "Killed process 6435 (oom) total-vm:8493624kB, anon-rss:5650184kB, file-rss:0kB, "
            "shmem-rss:0kB",
            {"mono_usec": 81399968458},
        ),
    ],
    "oom-5.4.0-pgtables-bytes-labelled-kB-bug-fragment.txt": [
        (2, "plain", "...", {}),
        (
            5,
            "plain",
            "Out of memory: Killed process 1878 (python) total-vm:869012kB, anon-rss:604572kB, "
            "file-rss:4kB, shmem-rss:0kB, UID:1000 pgtables:1269760kB oom_score_adj:0",
            {},
        ),
    ],
    "oom-5.4.y-pgtables-fixed-fragment.txt": [
        (
            1,
            "plain",
            "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
            {},
        ),
        (
            3,
            "plain",
            "[   1436]  1000  1436   217253   151890  1294336        0             0 python",
            {},
        ),
    ],
    "oom-6.11-qemu-stressng-global.txt": [
        (30, "dmesg", " </TASK>", {"mono_usec": 30_745_768}),
        (31, "dmesg", "Mem-Info:", {"mono_usec": 30_745_769}),
        (
            68,
            "dmesg",
            "Out of memory: Killed process 116 (stress-ng-vm) total-vm:10515768kB, "
            "anon-rss:7980628kB, file-rss:564kB, shmem-rss:0kB, UID:0 pgtables:15676kB "
            "oom_score_adj:1000",
            {"mono_usec": 30_745_847},
        ),
    ],
    "oom-6.x-k8s-systemd-containerd-cgv2-memcg-grep.txt": [
        (
            10,
            "dmesg",
            (
                "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=cri-containerd-",
                "6f6777a63.scope,task=node,pid=22609,uid=0",
            ),
            {"mono_usec": 2_993_782_678},
        ),
    ],
    "oom-arch-6.1.1-global.txt": [
        (
            172,
            "plain",
            "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,"
            "global_oom,task_memcg=/user.slice/user-504.slice/session-2.scope,task=doxygen,"
            "pid=473206,uid=504",
            {},
        ),
    ],
    "oom-distro-4.18ish-backport-k8s-cgroupfs-cgv1-memcg-oomkill-line-UID-fragment.txt": [
        (
            10,
            "dmesg",
            "Memory cgroup out of memory: Killed process 18524 (cdi-importer) total-vm:2701352kB,"
            " anon-rss:23032kB, file-rss:0kB, shmem-rss:0kB, UID:0",
            {"mono_usec": 580_237_376_066},
        ),
    ],
    "oom-el7-3.10-killed-process-UID-variant-fragment.txt": [
        (
            1,
            "syslog",
            "Killed process 799153 (node), UID 1000, total-vm:606096kB, anon-rss:68308kB, "
            "file-rss:13648kB, shmem-rss:0kB",
            {"host": "iZuf601dofntkxgp7lyfi9Z", "wall": datetime(YEAR, 11, 30, 10, 16, 57)},
        ),
    ],
    "oom-el7-3.10.0-514-vendor-patched-k8s-cgroupfs-memcg-hybrid-oomkill-line.txt": [
        (
            33,
            "syslog",
            "Memory cgroup out of memory: Kill process 12800 (runc:[2:INIT]) score 997 or "
            "sacrifice child",
            {"host": "host-xx", "mono_usec": None},
        ),
    ],
    "oom-k8s-cgroupfs-cgv1-memcg-dmesgT-zh-locale-2lines.txt": [
        (
            2,
            "dmesg-T",
            "Memory cgroup out of memory: Killed process 50624 (java) total-vm:59726088kB, "
            "anon-rss:8225208kB, file-rss:26912kB, shmem-rss:0kB, UID:10000 pgtables:21384kB "
            "oom_score_adj:969",
            {"wall": datetime(2024, 9, 3, 5, 57, 48)},
        ),
    ],
    "oom-kmsg-raw-k8s-systemd-docker-cgv1-memcg.txt": [
        (
            12,
            "kmsg",
            "oom_reaper: reaped process 2292670 (main), now anon-rss:0kB, file-rss:0kB, "
            "shmem-rss:0kB",
            {"seq": 30574078, "mono_usec": 3816544226814, "level": 6},
        ),
    ],
    "oom-panic_on_oom-sles15sp4-5.14.21.txt": [
        # the trailing blank is the kernel's (PROVENANCE.md)
        (
            1,
            "dmesg",
            "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled ",
            {"mono_usec": 185_133_252},
        ),
    ],
    "oom-panic_on_oom-syslogd-wall-broadcast.txt": [
        (1, "syslog-other", "Message from syslogd@ecs-liruilong at Aug  1 14:32:18 ...", {}),
        (
            2,
            "syslog-wall",
            "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
            {"host": "ecs-liruilong", "mono_usec": 340_648_118_967},
        ),
    ],
    "oom-proxmox-5.15-cgv2-lxc-docker-memcg.txt": [
        (44, "dmesg-T", "file 688283648", {"wall": datetime(2025, 8, 12, 3, 54, 3)}),
        (
            159,
            "dmesg-T",
            "Memory cgroup out of memory: Killed process 3902942 (php-fpm) total-vm:14740176kB, "
            "anon-rss:12625252kB, file-rss:0kB, shmem-rss:156088kB, UID:1000 pgtables:26388kB "
            "oom_score_adj:0",
            {"wall": datetime(2025, 8, 12, 3, 54, 3)},
        ),
    ],
    "oom-rhel6-2.6.32-573-killed-process-UID-variant-line.txt": [
        (
            1,
            "syslog",
            "Killed process 11726, UID 498, (mysqld) total-vm:7823732kB, anon-rss:2539268kB, "
            "file-rss:768kB",
            {"host": "server1", "mono_usec": 2_858_609_598_568},
        ),
    ],
    "oom-rhel6-2.6.32-syslog-fragment.txt": [
        (
            5,
            "syslog",
            "Killed process 4144, UID 497, (mysqld) total-vm:41772036kB, anon-rss:31443592kB, "
            "file-rss:4512kB",
            {"host": "testvm1", "wall": datetime(YEAR, 3, 17, 11, 21, 42)},
        ),
    ],
    "oom-rhel7-3.10.0-514-global.txt": [
        # line 32 holds rsyslog's #012 escapes: one record per embedded line
        (32, "plain", "active_anon:7355653 inactive_anon:660960 isolated_anon:0", {}),
        (
            144,
            "plain",
            "Killed process 6576 (mysqld) total-vm:33914892kB, anon-rss:20629004kB, "
            "file-rss:0kB, shmem-rss:0kB",
            {},
        ),
    ],
    "oom-rhel8-4.18.0-147-k8s-systemd-docker-cgv1-memcg.txt": [
        (
            39,
            "dmesg",
            (
                "Memory cgroup stats for /kubepods.slice/kubepods-burstable.slice/",
                "inactive_file:7596KB active_file:468KB unevictable:0KB",
            ),
            {"mono_usec": 20_148_497_797_405},
        ),
    ],
    "oom-ubuntu-4.15.0-63-k8s-cgroupfs-cgv1-memcg-syslog.txt": [
        (
            43,
            "syslog",
            "oom_reaper: reaped process 28285 (calloc), now anon-rss:0kB, file-rss:0kB, "
            "shmem-rss:0kB",
            {"host": "optiplex-2", "mono_usec": 6_686_782_289_037},
        ),
    ],
    "oom-ubuntu-5.13-sysrq-global.txt": [
        (
            69,
            "plain",
            "Out of memory: Killed process 651 (unattended-upgr) total-vm:108020kB, "
            "anon-rss:8380kB, file-rss:12548kB, shmem-rss:0kB, UID:0 pgtables:104kB "
            "oom_score_adj:0",
            {},
        ),
    ],
    "oom-ubuntu-azure-4.15.0-1037-docker-cgroupfs-cgv1-memcg-wrapped.txt": [
        # the poster's mailer wrapped this record onto 3 lines; the wrapped parts stay plain
        (
            26,
            "dmesg",
            "Task in /docker/0f2b3fcdd2578165ea77266cdc7b1ad43e75877b0ac1889ecda30a78cb78bd53",
            {"mono_usec": 193_038_106_468},
        ),
        (27, "plain", "killed as a result of limit of /docker/", {}),
        (28, "plain", "0f2b3fcdd2578165ea77266cdc7b1ad43e75877b0ac1889ecda30a78cb78bd53", {}),
    ],
    "syn-2.6.20-ubuntu7.04-lowercase-port-only-syslog.txt": [
        (
            1,
            "syslog",
            "possible SYN flooding on port 4671. Sending cookies.",
            {"host": "server", "wall": datetime(YEAR, 2, 25, 21, 35, 48)},
        ),
    ],
    "syn-3.17to6.1-request_sock_TCP-port-only-dmesg-2015.txt": [
        (1, "dmesg", "nf_conntrack: table full, dropping packet", {}),
        (3, "dmesg", "net_ratelimit: 364 callbacks suppressed", {"mono_usec": 2_998_005_969}),
    ],
    "syn-3.17to6.1-request_sock_TCP-port-only-dmesgT-2022.txt": [
        (
            1,
            "dmesg-T",
            "TCP: request_sock_TCP: Possible SYN flooding on port 80. Sending cookies.  "
            "Check SNMP counters.",
            {"wall": datetime(2022, 1, 29, 0, 44, 36)},
        ),
    ],
    "syn-3.17to6.1-request_sock_TCPv6-dropping-dmesgT-ru-locale.txt": [
        (
            2,
            "dmesg-T",
            "TCP: request_sock_TCPv6: Possible SYN flooding on port 34391. Dropping request.  "
            "Check SNMP counters.",
            {"wall": datetime(2021, 3, 12, 17, 26, 31)},
        ),
    ],
    "syn-3.5to3.16-or-el7-TCP-TCP-port-only-dmesg.txt": [
        (1, "dmesg", "systemd-journald[342]: Vacuuming done, freed 24854528 bytes", {}),
        (
            2,
            "dmesg",
            "TCP: TCP: Possible SYN flooding on port 11211. Sending cookies.  Check SNMP counters.",
            {"mono_usec": 6_732_114_764_622},
        ),
    ],
    "syn-3.5to3.16-or-el7-TCP-TCP-port-only-syslog.txt": [
        (
            1,
            "syslog",
            "TCP: TCP: Possible SYN flooding on port 80. Sending cookies.  Check SNMP counters.",
            {"host": "chi1", "mono_usec": 3_027_272_966_535},
        ),
    ],
    "syn-6.2plus-addr-ipv4-any-email-wrapped.txt": [
        (2, "dmesg", "TCP: request_sock_TCP: Possible SYN flooding on port", {}),
        (3, "plain", "0.0.0.0:7070. Sending cookies.", {}),
    ],
    "syn-6.2plus-addr-ipv4-printk-caller.txt": [
        (1, "dmesg", "sctp: Hash tables configured (bind 32/56)", {"caller": "T19113"}),
        (
            2,
            "dmesg",
            "TCP: request_sock_TCP: Possible SYN flooding on port 127.0.0.1:23456. "
            "Sending cookies.",
            {"caller": "C1", "mono_usec": 601_749_973},
        ),
    ],
    "syn-6.2plus-addr-ipv6-any-and-mptcp.txt": [
        (
            2,
            "plain",
            "TCP: request_sock_subflow_v4: Possible SYN flooding on port [::]:20002. "
            "Sending cookies.",
            {},
        ),
    ],
}

FILES = sorted(p.name for p in CORPUS.glob("*.txt"))


def _records(name: str) -> tuple[list[str], list[Record]]:
    lines = (CORPUS / name).read_text(encoding="utf-8").splitlines()
    return lines, list(read_lines(lines, year=YEAR))


def test_every_corpus_file_has_samples() -> None:
    assert FILES, "corpus missing"
    assert sorted(SAMPLES) == FILES


# What a transport prefix looks like; none may survive in a parsed record's text.
LEFTOVER_PREFIX = re.compile(
    r"\[ *\d+\.\d+\]|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d |\d+,\d+,\d+,[-c+];| kernel: \["
)


@pytest.mark.parametrize("name", FILES)
def test_corpus_file_parses_without_loss(name: str) -> None:
    lines, records = _records(name)
    by_line: dict[int, list[Record]] = {}
    for record in records:
        by_line.setdefault(record.lineno, []).append(record)
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            assert lineno not in by_line
            continue
        got = by_line.get(lineno)
        assert got, f"{name}:{lineno} lost: {line!r}"
        joined = "\n".join(r.text for r in got)
        original = unescape(line) if got[0].fmt == "kmsg" else line.replace("#012", "\n")
        assert original.endswith(joined), f"{name}:{lineno} text is not the line's message"
        if got[0].fmt != "plain" and is_kernel(got[0]):
            assert len(joined) < len(original), f"{name}:{lineno} prefix kept"
            assert not LEFTOVER_PREFIX.match(got[0].text), f"{name}:{lineno} {got[0].text!r}"
        assert len({(r.fmt, r.mono_usec, r.wall, r.host) for r in got}) == 1


@pytest.mark.parametrize("name", FILES)
def test_corpus_samples(name: str) -> None:
    _, records = _records(name)
    for lineno, fmt, text, extra in SAMPLES[name]:
        first = next(r for r in records if r.lineno == lineno)
        assert first.fmt == fmt, (lineno, first)
        if isinstance(text, tuple):
            assert first.text.startswith(text[0]), (lineno, first.text)
            assert first.text.endswith(text[1]), (lineno, first.text)
        else:
            assert first.text == text, lineno
        for key, value in extra.items():
            assert getattr(first, key) == value, (lineno, key)


def test_rhel7_escaped_mem_info_line_splits_into_six_records() -> None:
    _, records = _records("oom-rhel7-3.10.0-514-global.txt")
    line32 = [r.text for r in records if r.lineno == 32]
    assert line32 == [
        "active_anon:7355653 inactive_anon:660960 isolated_anon:0",
        " active_file:1263 inactive_file:1167 isolated_file:32",
        " unevictable:0 dirty:4 writeback:0 unstable:0",
        " slab_reclaimable:27412 slab_unreclaimable:13708",
        " mapped:4818 shmem:87896 pagetables:25222 bounce:0",
        " free:39513 free_pcp:2958 free_cma:0",
    ]


def test_proxmox_memory_stat_dump_is_one_record_per_key() -> None:
    _, records = _records("oom-proxmox-5.15-cgv2-lxc-docker-memcg.txt")
    stat_lines = [r for r in records if r.lineno in range(43, 83)]
    assert len(stat_lines) == 40
    assert all(r.fmt == "dmesg-T" and " " not in r.text.split(" ", 1)[0] for r in stat_lines)
    assert stat_lines[0].text == "anon 31154200576"
    assert stat_lines[-1].text == "thp_collapse_alloc 0"


def test_concatenated_corpus_parses_the_same_as_each_file() -> None:
    """Formats are detected per line, so a mixed file gives the files' records in order."""
    everything: list[str] = []
    expected: list[tuple[str, str]] = []
    for name in FILES:
        lines, records = _records(name)
        everything += [*lines, ""]
        expected += [(r.text, r.fmt) for r in records]
    got = [(r.text, r.fmt) for r in read_lines(everything, year=YEAR)]
    assert got == expected
