"""Property tests: whatever text arrives, the reader returns records and never raises or hangs.

Kernel text is hostile (process names are chosen by whoever runs the process) and pasted logs are
mangled, so inputs are random text, random text behind real prefixes, and real corpus lines with
bytes flipped, cut or duplicated.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernbot.core.formats.reader import (
    LineReader,
    parse_journal_entry,
    parse_kmsg_record,
    read_lines,
)
from kernbot.core.record import Record

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
CORPUS_LINES = [
    line
    for path in sorted(CORPUS.glob("*.txt"))
    for line in path.read_text(encoding="utf-8").splitlines()
    if line.strip()
]

PREFIXES = [
    "[  283.294569] ",
    "[  580.340726][T19113] ",
    "[    0.000000] [    C1] ",
    "[Di Aug 12 03:54:03 2025] ",
    "[二 9月  3 05:57:48 2024] ",
    "[Ср мар 10 20:19:39 2021] ",
    "[Nov24 21:42] ",
    "[  +0.000123] ",
    "[    1.200000 <    0.000123>] ",
    "<4>[  12.300000] ",
    "<6>",
    "kern  :warn  : [   12.300000] ",
    "kern  :info  : ",
    "2026-11-24T21:42:19,123456+01:00 ",
    "2024-05-01T12:34:56.789012+00:00 host kernel: ",
    "2026-11-24T21:42:19+0000 node1 kernel: ",
    "Dec  4 15:24:33 optiplex-2 kernel: [6686782.276093] ",
    "Jun 17 03:18:17 host-xx kernel: ",
    "Nov 24 21:42:19.123456 node1 kernel: ",
    "Mar 17 11:21:42 testvm1 sshd[12]: ",
    "[  123.456789] node1 kernel: ",
    "2016-12-19 16:14:24 192.168.186.128:6666 [ 12.345678] ",
    "6,30574067,3816544225424,-;",
    "4,1,2,c,caller=T12;",
    "6,2,3,+;",
    " kernel:[340648.118967] ",
    "Message from syslogd@h at Aug  1 14:32:18 ...",
    " SUBSYSTEM=",
    "                ",
    '         "msg": ',
    '   "dmesg": [',
    "{",
    "",
]

hostile = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(list("[]<>:;,.#\\x0123456789 +-TC{}\"'`*!@")),
    ),
    max_size=120,
)


def _check(records: list[Record]) -> None:
    for record in records:
        assert isinstance(record, Record)
        assert isinstance(record.text, str)
        assert "\n" not in record.text
        assert record.level is None or 0 <= record.level <= 7


def _read_all(lines: list[str]) -> list[Record]:
    reader = LineReader(host="h", boot_id="b", year=2024)
    out: list[Record] = []
    for number, line in enumerate(lines, start=1):
        out += reader.feed(line, number)
    out += reader.flush()
    _check(out)
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(hostile, max_size=8))
def test_random_text_never_raises(lines: list[str]) -> None:
    _read_all(lines)


# prefixes after which a line always makes at least one record of its own
RECORD_PREFIXES = [
    p
    for p in PREFIXES
    if p.strip() and not p.startswith(("4,1,2,c", "6,2,3,+", " SUBSYSTEM", "{", "   "))
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PREFIXES), hostile), min_size=1, max_size=8))
def test_real_prefixes_with_hostile_messages(pairs: list[tuple[str, str]]) -> None:
    _read_all([prefix + message for prefix, message in pairs])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(RECORD_PREFIXES), hostile), min_size=1, max_size=8))
def test_no_record_line_is_lost(pairs: list[tuple[str, str]]) -> None:
    lines = [prefix + message for prefix, message in pairs]
    numbers = {r.lineno for r in _read_all(lines)}
    assert numbers == set(range(1, len(lines) + 1))


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.sampled_from(CORPUS_LINES),
    st.integers(min_value=0, max_value=400),
    st.sampled_from(["flip", "cut", "dup", "insert"]),
    hostile,
)
def test_mutated_corpus_lines_never_raise(line: str, at: int, how: str, junk: str) -> None:
    at %= len(line) + 1
    if how == "flip":
        mutated = line[:at] + junk[:1] + line[at + 1 :]
    elif how == "cut":
        mutated = line[:at]
    elif how == "dup":
        mutated = line[:at] + line
    else:
        mutated = line[:at] + junk + line[at:]
    _read_all([line, mutated, mutated])


@settings(max_examples=200, deadline=None)
@given(hostile, st.text(max_size=40))
def test_kmsg_records_never_raise(message: str, dictionary: str) -> None:
    records = parse_kmsg_record(f"6,1,2,-;{message}\n {dictionary}\n")
    _check(records)
    assert records
    _check(parse_kmsg_record(message))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "MESSAGE",
                "PRIORITY",
                "_TRANSPORT",
                "__REALTIME_TIMESTAMP",
                "_SOURCE_MONOTONIC_TIMESTAMP",
                "_BOOT_ID",
                "_HOSTNAME",
                "__CURSOR",
                "SYSLOG_IDENTIFIER",
            ]
        ),
        json_values,
    )
)
def test_journal_entries_of_any_shape_never_raise(entry: dict[str, object]) -> None:
    _check(parse_journal_entry(entry))
    _read_all([json.dumps(entry)])


def test_long_lines_do_not_hang() -> None:
    """Worst cases for the prefix regexes: long runs of the characters they repeat."""
    lines = [
        "[" + " " * 100_000,
        "[" + "1" * 100_000,
        "6," * 50_000,
        "<" + "4" * 100_000 + ">",
        "Nov 24 21:42:19 " + "h" * 100_000,
        "2024-05-01T12:34:56.789012+00:00 " + "x" * 100_000 + " kernel: ",
        "\\x0a" * 50_000,
        "#012" * 50_000,
        '         "msg": ' + '"' * 100_000,
        "kern  :" + " " * 100_000,
    ]
    for line in lines:
        _check(list(read_lines([line])))
        _check(list(read_lines(["[  1.000000] x", line, line])))
