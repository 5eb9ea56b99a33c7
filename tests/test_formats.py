"""Table tests: real kernel log lines in every transport, the expected record written beside each.

Lines come from tests/fixtures/corpus (file named in the comment) or from this machine's own
util-linux 2.38 / kernel output; synthetic ones say so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kernbot.core.formats.reader import (
    LineReader,
    is_kernel,
    parse_journal_entry,
    parse_kmsg_record,
    read_lines,
)
from kernbot.core.record import Record

CEST = timezone(timedelta(hours=1))

# (line, expected fields of the single record it yields)
TABLE: list[tuple[str, dict[str, Any]]] = [
    # oom-3.2-rc3-global-oom_adj-era.txt: plain dmesg
    (
        "[  283.294569] xfs_db invoked oom-killer: gfp_mask=0x280da, order=0, oom_adj=0, "
        "oom_score_adj=0",
        {
            "text": "xfs_db invoked oom-killer: gfp_mask=0x280da, order=0, oom_adj=0, "
            "oom_score_adj=0",
            "mono_usec": 283_294_569,
            "fmt": "dmesg",
            "wall": None,
        },
    ),
    # the kernel's own leading space (stack lines) is part of the message
    (
        "[  283.303616]  [<ffffffff810debfd>] ? cpuset_print_task_mems_allowed+0x9d/0xb0",
        {"text": " [<ffffffff810debfd>] ? cpuset_print_task_mems_allowed+0x9d/0xb0"},
    ),
    # oom-rhel8: 8-digit seconds
    (
        "[20148497.767284] java invoked oom-killer: gfp_mask=0x6200ca(GFP_HIGHUSER_MOVABLE), "
        "nodemask=(null), order=0, oom_score_adj=916",
        {"mono_usec": 20_148_497_767_284, "fmt": "dmesg"},
    ),
    # syn-6.2plus-addr-ipv4-printk-caller.txt: console-style caller id glued to the timestamp
    (
        "[  601.749973][    C1] TCP: request_sock_TCP: Possible SYN flooding on port "
        "127.0.0.1:23456. Sending cookies.",
        {
            "text": "TCP: request_sock_TCP: Possible SYN flooding on port 127.0.0.1:23456. "
            "Sending cookies.",
            "caller": "C1",
            "mono_usec": 601_749_973,
        },
    ),
    (
        "[  580.340726][T19113] sctp: Hash tables configured (bind 32/56)",
        {"text": "sctp: Hash tables configured (bind 32/56)", "caller": "T19113"},
    ),
    # util-linux dmesg prints the caller id after a space
    (
        "[    0.000000] [    T0] Linux version 6.18.44",
        {"text": "Linux version 6.18.44", "caller": "T0", "mono_usec": 0},
    ),
    # syn-3.17to6.1-request_sock_TCP-port-only-dmesgT-2022.txt: dmesg -T, English
    (
        "[Sat Jan 29 00:44:36 2022] TCP: request_sock_TCP: Possible SYN flooding on port 80. "
        "Sending cookies.  Check SNMP counters.",
        {
            "text": "TCP: request_sock_TCP: Possible SYN flooding on port 80. Sending cookies.  "
            "Check SNMP counters.",
            "wall": datetime(2022, 1, 29, 0, 44, 36),
            "fmt": "dmesg-T",
            "mono_usec": None,
        },
    ),
    # oom-proxmox: German locale
    (
        "[Di Aug 12 03:54:03 2025] php-fpm invoked oom-killer: gfp_mask=0x1100cca"
        "(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
        {"wall": datetime(2025, 8, 12, 3, 54, 3), "fmt": "dmesg-T"},
    ),
    # zh_CN locale (oom-k8s-cgroupfs-cgv1-memcg-dmesgT-zh-locale-2lines.txt)
    (
        "[二 9月  3 05:57:48 2024] Memory cgroup out of memory: Killed process 50624 (java) "
        "total-vm:59726088kB",
        {
            "text": "Memory cgroup out of memory: Killed process 50624 (java) total-vm:59726088kB",
            "wall": datetime(2024, 9, 3, 5, 57, 48),
        },
    ),
    # ru_RU locale (syn-3.17to6.1-request_sock_TCPv6-dropping-dmesgT-ru-locale.txt)
    (
        "[Ср мар 10 20:19:39 2021] TCP: request_sock_TCPv6: Possible SYN flooding on port "
        "34391. Dropping request.  Check SNMP counters.",
        {
            "text": "TCP: request_sock_TCPv6: Possible SYN flooding on port 34391. Dropping "
            "request.  Check SNMP counters.",
            "wall": datetime(2021, 3, 10, 20, 19, 39),
        },
    ),
    # an unknown locale still loses its prefix; only wall is unknown (synthetic month name)
    (
        "[Xy Qqq 10 20:19:39 2021] TCP: msg",
        {"text": "TCP: msg", "wall": None, "fmt": "dmesg-T"},
    ),
    # dmesg --time-format iso (this machine's util-linux 2.38.1), and the older +0100 form
    (
        "2026-11-24T21:42:19,123456+01:00 usb 1-1: new high-speed USB device number 2",
        {
            "text": "usb 1-1: new high-speed USB device number 2",
            "wall": datetime(2026, 11, 24, 21, 42, 19, 123456, tzinfo=CEST),
            "fmt": "dmesg-iso",
        },
    ),
    (
        "2026-11-24T21:42:19,123456+0100 Linux version 6.18.44",
        {"text": "Linux version 6.18.44", "wall": datetime(2026, 11, 24, 20, 42, 19, 123456, UTC)},
    ),
    # dmesg -x (this machine)
    (
        "kern  :warn  : [    0.000000] x86 CPU feature dependency check failure",
        {"text": "x86 CPU feature dependency check failure", "level": 4, "mono_usec": 0},
    ),
    ("kern  :info  : [   12.300000] x", {"level": 6, "fmt": "dmesg-x", "mono_usec": 12_300_000}),
    # dmesg -r
    (
        "<4>[  185.133252] Kernel panic - not syncing: Out of memory",
        {"text": "Kernel panic - not syncing: Out of memory", "level": 4, "fmt": "dmesg-r"},
    ),
    # dmesg -d
    (
        "[    1.200000 <    0.000123>] Command line: console=ttyS0",
        {"text": "Command line: console=ttyS0", "mono_usec": 1_200_000},
    ),
    # dmesg -e
    ("[  +0.000123] Command line: x", {"text": "Command line: x", "fmt": "dmesg-reltime"}),
    ("[<    0.000123>] APIC: x", {"text": "APIC: x", "fmt": "dmesg-reltime"}),
    (
        "kern  :info  : 2026-11-25T02:38:19,000000+00:00 APIC: Static calls initialized",
        {
            "text": "APIC: Static calls initialized",
            "level": 6,
            "wall": datetime(2026, 11, 25, 2, 38, 19, tzinfo=UTC),
        },
    ),
    # rsyslog kern.log with the kernel's [ts] (oom-ubuntu-4.15.0-63 ... -syslog.txt)
    (
        "Dec  4 15:24:33 optiplex-2 kernel: [6686782.276093] calloc invoked oom-killer: "
        "gfp_mask=0x14000c0(GFP_KERNEL), nodemask=(null), order=0, oom_score_adj=968",
        {
            "text": "calloc invoked oom-killer: gfp_mask=0x14000c0(GFP_KERNEL), "
            "nodemask=(null), order=0, oom_score_adj=968",
            "host": "optiplex-2",
            "mono_usec": 6_686_782_276_093,
            "wall": datetime(2024, 12, 4, 15, 24, 33),
            "fmt": "syslog",
        },
    ),
    # /var/log/messages without [ts] (oom-el7-3.10.0-514-vendor-patched...): hostile-ish comm
    (
        "Jun 17 03:18:17 host-xx kernel: runc:[2:INIT] invoked oom-killer: gfp_mask=0xd0, "
        "order=0, oom_score_adj=997",
        {
            "text": "runc:[2:INIT] invoked oom-killer: gfp_mask=0xd0, order=0, oom_score_adj=997",
            "host": "host-xx",
            "mono_usec": None,
        },
    ),
    # journalctl -k short-precise (synthetic timestamp, real message)
    (
        "Nov 24 21:42:19.123456 node1 kernel: oom_reaper: reaped process 2292670 (main)",
        {
            "text": "oom_reaper: reaped process 2292670 (main)",
            "wall": datetime(2024, 11, 24, 21, 42, 19, 123456),
        },
    ),
    # rsyslog RFC3339 / journal short-iso
    (
        "2024-05-01T12:34:56.789012+00:00 web1 kernel: TCP: request_sock_TCP: Possible SYN "
        "flooding on port 0.0.0.0:443. Sending cookies.",
        {
            "text": "TCP: request_sock_TCP: Possible SYN flooding on port 0.0.0.0:443. Sending "
            "cookies.",
            "host": "web1",
            "wall": datetime(2024, 5, 1, 12, 34, 56, 789012, UTC),
            "fmt": "syslog-iso",
        },
    ),
    (
        "2026-11-24T21:42:19+0000 node1 kernel: Out of memory: Killed process 1436 (python)",
        {"text": "Out of memory: Killed process 1436 (python)", "host": "node1"},
    ),
    # journalctl -k -o short-monotonic
    (
        "[  123.456789] node1 kernel: oom-kill:constraint=CONSTRAINT_NONE",
        {
            "text": "oom-kill:constraint=CONSTRAINT_NONE",
            "host": "node1",
            "mono_usec": 123_456_789,
            "fmt": "journal-short-monotonic",
        },
    ),
    # non-kernel syslog lines are kept but marked
    (
        "Mar 17 11:21:42 testvm1 sshd[12]: Accepted publickey for root",
        {"text": "Accepted publickey for root", "fmt": "syslog-other", "host": "testvm1"},
    ),
    # netconsole / remote capture prefix
    (
        "2016-12-19 16:14:24 192.168.186.128:6666 [  12.345678] Out of memory: Kill process 1",
        {
            "text": "Out of memory: Kill process 1",
            "host": "192.168.186.128:6666",
            "wall": datetime(2016, 12, 19, 16, 14, 24),
            "mono_usec": 12_345_678,
            "fmt": "netconsole",
        },
    ),
    # raw /dev/kmsg (oom-kmsg-raw-k8s-systemd-docker-cgv1-memcg.txt)
    (
        "6,30574068,3816544225428,-;memory: usage 20480kB, limit 20480kB, failcnt 136",
        {
            "text": "memory: usage 20480kB, limit 20480kB, failcnt 136",
            "level": 6,
            "seq": 30574068,
            "mono_usec": 3816544225428,
            "fmt": "kmsg",
        },
    ),
    (
        "4,1200,601749973,-,caller=C1;TCP: request_sock_TCP: Possible SYN flooding",
        {"caller": "C1", "level": 4, "seq": 1200},
    ),
    # prose, pastes without prefix (oom-arch-6.1.1-global.txt)
    (
        "doxygen invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0",
        {
            "text": "doxygen invoked oom-killer: "
            "gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0",
            "fmt": "plain",
        },
    ),
    (" dump_stack_lvl+0x48/0x60", {"text": " dump_stack_lvl+0x48/0x60", "fmt": "plain"}),
    ("[drm] not a timestamp", {"text": "[drm] not a timestamp", "fmt": "plain"}),
    ("CRLF line\r", {"text": "CRLF line", "fmt": "plain"}),
]


def _only(line: str, **kw: Any) -> Record:
    records = list(read_lines([line], **kw))
    assert len(records) == 1, records
    return records[0]


@pytest.mark.parametrize(("line", "expected"), TABLE, ids=[t[0][:40] for t in TABLE])
def test_table(line: str, expected: dict[str, Any]) -> None:
    record = _only(line, year=2024)
    for key, value in expected.items():
        assert getattr(record, key) == value, key


def test_year_less_dates_need_a_year() -> None:
    line = "Dec  4 15:24:33 optiplex-2 kernel: [6686782.276093] calloc invoked oom-killer"
    assert _only(line).wall is None
    assert _only(line, year=2019).wall == datetime(2019, 12, 4, 15, 24, 33)


def test_reader_defaults_fill_host_and_boot_id() -> None:
    record = _only("[   30.745678] hello", host="node7", boot_id="b-1")
    assert (record.host, record.boot_id, record.lineno) == ("node7", "b-1", 1)
    syslog = _only("Nov 24 21:42:19 other kernel: hi", host="node7")
    assert syslog.host == "other"


def test_rsyslog_012_splits_into_records_sharing_metadata() -> None:
    # oom-rhel7-3.10.0-514-global.txt line 32, as rsyslog wrote it into /var/log/messages
    line = (
        "Feb 13 13:15:04 host1 kernel: active_anon:7355653 inactive_anon:660960 isolated_anon:0"
        "#012 active_file:1263 inactive_file:1167 isolated_file:32#012 unevictable:0 dirty:4"
    )
    records = list(read_lines([line], year=2017))
    assert [r.text for r in records] == [
        "active_anon:7355653 inactive_anon:660960 isolated_anon:0",
        " active_file:1263 inactive_file:1167 isolated_file:32",
        " unevictable:0 dirty:4",
    ]
    assert {(r.host, r.wall, r.lineno, r.fmt) for r in records} == {
        ("host1", datetime(2017, 2, 13, 13, 15, 4), 1, "syslog")
    }


def test_kmsg_x0a_and_utf8_escapes() -> None:
    raw = "4,77,5002,-;Mem-Info: a\\x0a b\\x0a\\x5c \\xe2\\x80\\x94 \\xff\n SUBSYSTEM=acpi\n"
    records = parse_kmsg_record(raw, boot_id="boot-1")
    assert [r.text for r in records] == ["Mem-Info: a", " b", "\\ — \ufffd"]
    assert {(r.seq, r.level, r.mono_usec, r.boot_id) for r in records} == {(77, 4, 5002, "boot-1")}


def test_kmsg_dictionary_lines_are_not_text_and_fragments_join() -> None:
    lines = [
        "6,339,5140900,-;NET: Registered protocol family 10",
        " SUBSYSTEM=net",
        " DEVICE=+net:lo",
        "6,340,5140901,c;oom-kill:constraint=CONSTRAINT_NONE",
        " SUBSYSTEM=x",
        "6,341,5140902,+;,nodemask=(null)",
        "6,342,5140903,c;a lone fragment",
        "6,343,5140904,-;next",
    ]
    records = list(read_lines(lines))
    assert [(r.text, r.seq, r.lineno) for r in records] == [
        ("NET: Registered protocol family 10", 339, 1),
        ("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null)", 340, 4),
        ("a lone fragment", 342, 7),
        ("next", 343, 8),
    ]


def test_flush_returns_a_trailing_fragment() -> None:
    reader = LineReader()
    assert reader.feed("6,1,2,c;start") == []
    assert [r.text for r in reader.flush()] == ["start"]
    assert reader.flush() == []


def test_dmesg_indented_continuations_take_the_record_metadata() -> None:
    # oom-4.20.12-x86-global-no-oomkill-line.txt lines 31-33 and 37
    lines = [
        "[81399.968304] active_anon:1245960 inactive_anon:177996 isolated_anon:32",
        "                active_file:71 inactive_file:0 isolated_file:0",
        "                unevictable:0 dirty:0 writeback:17 unstable:0",
        "[81399.968307] Node 0 active_anon:4983840kB",
    ]
    records = list(read_lines(lines))
    assert [(r.text, r.mono_usec, r.lineno) for r in records] == [
        ("active_anon:1245960 inactive_anon:177996 isolated_anon:32", 81399968304, 1),
        (" active_file:71 inactive_file:0 isolated_file:0", 81399968304, 2),
        (" unevictable:0 dirty:0 writeback:17 unstable:0", 81399968304, 3),
        ("Node 0 active_anon:4983840kB", 81399968307, 4),
    ]


def test_dmesg_T_indentation_and_journal_short_continuations() -> None:
    # oom-proxmox-5.15-cgv2-lxc-docker-memcg.txt: memory.stat dump under `dmesg -T`
    lines = [
        "[Di Aug 12 03:54:03 2025] Memory cgroup stats for /lxc/39004:",
        "                          anon 31154200576",
        "                          file 688283648",
        "                          ",
        "                          kernel_stack 5242880",
        "Nov 24 21:42:19 node1 kernel: Mem-Info:",
        "                              active_anon:1 inactive_anon:2",
    ]
    records = list(read_lines(lines, year=2026))
    assert [(r.text, r.fmt) for r in records] == [
        ("Memory cgroup stats for /lxc/39004:", "dmesg-T"),
        ("anon 31154200576", "dmesg-T"),
        ("file 688283648", "dmesg-T"),
        ("kernel_stack 5242880", "dmesg-T"),
        ("Mem-Info:", "syslog"),
        ("active_anon:1 inactive_anon:2", "syslog"),
    ]
    assert records[2].wall == datetime(2025, 8, 12, 3, 54, 3)
    assert records[5].host == "node1"


def test_indentation_without_a_prefixed_record_is_plain_text() -> None:
    records = list(read_lines(["Call Trace:", " <TASK>", "", "        indented"]))
    assert [(r.text, r.fmt) for r in records] == [
        ("Call Trace:", "plain"),
        (" <TASK>", "plain"),
        ("        indented", "plain"),
    ]


def test_syslogd_wall_broadcast() -> None:
    # oom-panic_on_oom-syslogd-wall-broadcast.txt
    lines = [
        "Message from syslogd@ecs-liruilong at Aug  1 14:32:18 ...",
        " kernel:[340648.118967] Kernel panic - not syncing: Out of memory: system-wide "
        "panic_on_oom is enabled",
    ]
    header, panic = read_lines(lines, year=2023)
    assert not is_kernel(header)
    assert is_kernel(panic)
    assert panic.text == (
        "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled"
    )
    assert (panic.host, panic.mono_usec, panic.wall) == (
        "ecs-liruilong",
        340648118967,
        datetime(2023, 8, 1, 14, 32, 18),
    )


JOURNAL_KERNEL = {
    "__CURSOR": "s=0b1;i=2a;b=9e;m=1;t=5;x=9",
    "__REALTIME_TIMESTAMP": "1732484539123456",
    "__MONOTONIC_TIMESTAMP": "2993661240",
    "_BOOT_ID": "9e0c4a3a5b3e4c3e8f6c2d1b0a998877",
    "_TRANSPORT": "kernel",
    "PRIORITY": "6",
    "SYSLOG_FACILITY": "0",
    "SYSLOG_IDENTIFIER": "kernel",
    "_HOSTNAME": "ip-10-0-1-5",
    "_SOURCE_MONOTONIC_TIMESTAMP": "2993664150",
    "MESSAGE": "Memory cgroup stats for /kubepods.slice:\nanon 4194304\nfile 0",
}


def test_parse_journal_entry_kernel_with_newlines() -> None:
    records = parse_journal_entry(JOURNAL_KERNEL)
    assert [r.text for r in records] == [
        "Memory cgroup stats for /kubepods.slice:",
        "anon 4194304",
        "file 0",
    ]
    first = records[0]
    assert first.level == 6
    assert first.mono_usec == 2993664150
    assert first.wall == datetime(2024, 11, 24, 21, 42, 19, 123456, UTC)
    assert first.boot_id == "9e0c4a3a5b3e4c3e8f6c2d1b0a998877"
    assert first.host == "ip-10-0-1-5"
    assert first.cursor == "s=0b1;i=2a;b=9e;m=1;t=5;x=9"
    assert first.fmt == "journal-json"


def test_parse_journal_entry_byte_array_message_and_non_kernel() -> None:
    hostile = dict(JOURNAL_KERNEL, MESSAGE=[*b"Killed process 1 (<!channel>)\n", 255])
    records = parse_journal_entry(hostile)
    assert [r.text for r in records] == ["Killed process 1 (<!channel>)", "\ufffd"]
    assert parse_journal_entry(dict(JOURNAL_KERNEL, _TRANSPORT="stdout")) == []
    assert parse_journal_entry({"MESSAGE": None, "PRIORITY": [1, 2]}) == []


def test_json_lone_surrogates_become_replacement_characters() -> None:
    """`\\ud800` in JSON decodes to a lone surrogate; no UTF-8 writer would take it later."""
    entry = dict(JOURNAL_KERNEL, MESSAGE="Killed process 1 (a\ud800b)", _HOSTNAME=["h\udfff"])
    (rec,) = parse_journal_entry(entry)
    assert (rec.text, rec.host) == ("Killed process 1 (a\ufffdb)", "h\ufffd")
    line = '{"pri":3,"time":1.5,"caller":"T1\\ud800","msg":"x \\udc80 y \\ud83d\\ude00"}'
    (rec,) = read_lines([line])
    assert (rec.fmt, rec.text, rec.caller) == ("dmesg-json", "x \ufffd y \U0001f600", "T1\ufffd")
    rec.text.encode()  # a surrogate pair stays the character it spells


def test_journal_json_lines_compact_and_old_spacing() -> None:
    import json

    compact = json.dumps(JOURNAL_KERNEL, separators=(",", ":"))
    spaced = "{ " + ", ".join(f'"{k}" : {json.dumps(v)}' for k, v in JOURNAL_KERNEL.items()) + " }"
    other = json.dumps({"_TRANSPORT": "syslog", "MESSAGE": "sshd says hi", "_HOSTNAME": "h"})
    records = list(read_lines([compact, spaced, other]))
    assert [(r.text, r.lineno, r.fmt) for r in records] == [
        ("Memory cgroup stats for /kubepods.slice:", 1, "journal-json"),
        ("anon 4194304", 1, "journal-json"),
        ("file 0", 1, "journal-json"),
        ("Memory cgroup stats for /kubepods.slice:", 2, "journal-json"),
        ("anon 4194304", 2, "journal-json"),
        ("file 0", 2, "journal-json"),
        ("sshd says hi", 3, "journal-other"),
    ]
    assert records[4].cursor == JOURNAL_KERNEL["__CURSOR"]


def test_dmesg_json_pretty_and_compact() -> None:
    # the layout of this machine's `dmesg --json` (util-linux 2.38.1), with -x for the 2nd
    pretty = """{
   "dmesg": [
      {
         "pri": 5,
         "time":     0.000000,
         "msg": "Linux version 6.18.44-fc-v782"
      },{
         "fac": "kern",
         "pri": "warn",
         "time":   30.745678,
         "msg": "Mem-Info:\\nactive_anon:1 \\"quoted\\""
      }
   ]
}
[   31.000000] after the json""".splitlines()
    records = list(read_lines(pretty))
    assert [(r.text, r.level, r.mono_usec, r.fmt) for r in records] == [
        ("Linux version 6.18.44-fc-v782", 5, 0, "dmesg-json"),
        ("Mem-Info:", 4, 30745678, "dmesg-json"),
        ('active_anon:1 "quoted"', 4, 30745678, "dmesg-json"),
        ("after the json", None, 31000000, "dmesg"),
    ]
    compact = '{"pri":6,"time":    12.345678,"msg":"one record"}'
    assert _only(compact).mono_usec == 12345678


HOSTILE = ["<!channel>", "*bold*", "runc:[2:INIT]", "a b/c", "`x`", "kernel: ", "[  1.0] ", "#012"]


@pytest.mark.parametrize("comm", HOSTILE)
def test_hostile_process_names_survive_every_format(comm: str) -> None:
    message = f"Out of memory: Killed process 42 ({comm}) total-vm:1kB"
    lines = [
        f"[  1.000000] {message}",
        f"[Tue May 16 19:45:20 2017] {message}",
        f"Nov 24 21:42:19 node1 kernel: [  1.000000] {message}",
        f"6,1,1000000,-;{message}",
        f"kern  :err   : [    1.000000] {message}",
    ]
    for line in lines:
        records = list(read_lines([line], year=2024))
        if "#012" in comm and line.startswith("Nov"):
            assert len(records) == 2  # rsyslog's escape, as designed
            continue
        assert [r.text for r in records] == [message], line


# --- this machine's real kernel log, through real util-linux dmesg -------------------------------

DMESG = shutil.which("dmesg")
needs_dmesg = pytest.mark.skipif(
    DMESG is None or not os.access("/dev/kmsg", os.R_OK), reason="needs dmesg and /dev/kmsg"
)
UTC_ENV = {**os.environ, "TZ": "UTC", "LC_ALL": "C"}


def _dmesg(*args: str) -> list[str]:
    assert DMESG is not None
    done = subprocess.run(
        [DMESG, *args], env=UTC_ENV, capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.splitlines()


CPPC_RAW = Path(__file__).parent / "fixtures" / "dmesg" / "raw-multiline-cppc.txt"
"""`dmesg -r` of a fresh machine's ring buffer: amd_pstate prints one record of two lines
(`…by the BIOS.\nPlease enable it…`), which dmesg indents under the first."""


def test_dmesg_x_indents_embedded_lines_one_column_short() -> None:
    """Live `dmesg -x` (util-linux 2.39) indents a record's second line 30 columns under a
    31-column `kern  :warn  : [    0.428767] ` prefix; plain `dmesg` uses the full 15."""
    first = "amd_pstate: The CPPC feature is supported but currently disabled by the BIOS."
    second = "Please enable it if your BIOS has the CPPC option."
    after = "amd_pstate: the _CPC object is not present in SBIOS or ACPI disabled"
    for lines in (
        [
            f"kern  :warn  : [    0.428767] {first}",
            " " * 30 + second,
            f"kern  :warn  : [    0.428769] {after}",
        ],
        [f"[    0.428767] {first}", " " * 15 + second, f"[    0.428769] {after}"],
        [f"<4>[    0.428767] {first}", " " * 18 + second, f"<4>[    0.428769] {after}"],
    ):
        records = list(read_lines(lines))
        assert [r.text for r in records] == [first, second, after], lines[0]
        assert records[1].mono_usec == 428767 and records[1].fmt == records[0].fmt


@needs_dmesg
@pytest.mark.parametrize("source", ["fixture", "machine"])
def test_every_dmesg_output_format_gives_the_same_records(tmp_path: Path, source: str) -> None:
    """One capture (`dmesg -r`), replayed with `dmesg -F` in each output format: the CPPC
    fixture (a record with an embedded line) and whatever this machine's kernel printed."""
    raw = tmp_path / "raw.txt"
    if source == "fixture":
        raw.write_bytes(CPPC_RAW.read_bytes())
    else:
        raw.write_text("\n".join(_dmesg("-r")) + "\n", encoding="utf-8")
    reference = list(read_lines(raw.read_text(encoding="utf-8").splitlines()))
    assert len(reference) > (3 if source == "fixture" else 10)
    assert {r.fmt for r in reference} == {"dmesg-r"}
    texts = [r.text for r in reference]
    if source == "fixture":
        assert "Please enable it if your BIOS has the CPPC option." in texts
    monos = [r.mono_usec for r in reference]
    for options in (
        ["-x"],
        [],
        ["-d"],
        ["-T"],
        ["--time-format", "iso"],
        ["-e"],
        ["-x", "-T"],
        ["-T", "-d"],
        ["-x", "--time-format", "iso"],
        ["-t"],
        ["-x", "-t"],
        ["--time-format", "delta"],
    ):
        records = list(read_lines(_dmesg("-F", str(raw), *options)))
        got = [r.text for r in records]
        # `dmesg -F` takes a capture's embedded line with its indent as text and indents it
        # again, so a replayed embedded line may only have more leading blanks than the record.
        assert len(got) == len(texts), options
        for g, t in zip(got, texts, strict=True):
            assert g == t or (g.endswith(t) and g[: len(g) - len(t)].isspace()), (options, g, t)
        if options in (["-x"], [], ["-d"]):
            assert [r.mono_usec for r in records] == monos, options
        if options[:1] == ["-x"]:
            assert [r.level for r in records] == [r.level for r in reference], options
    walls_t = [r.wall for r in read_lines(_dmesg("-F", str(raw), "-T"))]
    walls_iso = [r.wall for r in read_lines(_dmesg("-F", str(raw), "--time-format", "iso"))]
    assert None not in walls_iso
    assert walls_t == [w.replace(tzinfo=None, microsecond=0) for w in walls_iso if w]


def _read_kmsg() -> list[str]:
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    raws: list[str] = []
    try:
        while True:
            try:
                raws.append(os.read(fd, 16384).decode("utf-8", "replace"))
            except BrokenPipeError:  # the ring buffer overwrote records: carry on
                continue
            except BlockingIOError:
                return raws
    finally:
        os.close(fd)


@needs_dmesg
def test_kmsg_records_match_dmesg_json() -> None:
    """/dev/kmsg read directly vs `dmesg --json` read just after (util-linux unescapes itself)."""
    kmsg = [r for raw in _read_kmsg() for r in parse_kmsg_record(raw, boot_id="b")]
    members = list(read_lines(_dmesg("--json")))
    assert kmsg
    assert members
    assert {r.fmt for r in kmsg} == {"kmsg"}
    assert {r.fmt for r in members} == {"dmesg-json"}
    seqs = [r.seq for r in kmsg if r.seq is not None]
    assert seqs == sorted(seqs)
    start = members[0].mono_usec or 0  # records before it may have been overwritten meanwhile
    # Levels are left out: for records user space wrote to /dev/kmsg (facility != 0, e.g.
    # systemd-journald's `44,…`) util-linux 2.38 prints `"pri": fac|level` (5 for 44), not 4.
    ours = Counter((r.mono_usec, r.text) for r in kmsg if (r.mono_usec or 0) >= start)
    theirs = Counter((r.mono_usec, r.text) for r in members)
    assert ours
    assert not ours - theirs
