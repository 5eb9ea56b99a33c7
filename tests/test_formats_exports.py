"""Every log a user has: log-platform exports, busybox syslog, pastes, `--format NAME`.

The fixtures (tests/fixtures/exports, PROVENANCE.md says where each format is documented) wrap
one real report; `kernbot scan` must find in each the same event as in the capture itself.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kernbot.core.formats.embedded import csv_message, embedded_message, json_message
from kernbot.core.formats.reader import FORCED_FORMATS, read_lines
from kernbot.core.prefilter import newest_first

FIXTURES = Path(__file__).parent / "fixtures"
EXPORTS = FIXTURES / "exports"
CAPTURE = FIXTURES / "corpus" / "oom-6.x-k8s-systemd-containerd-cgv2-memcg-grep.txt"
SAME = ("constraint", "victim", "memcg", "kubernetes", "trigger", "tasks", "killed", "complete")
NEWEST_FIRST = {
    "kibana-discover-report.csv",
    "elasticsearch-search-response.json",
    "datadog-log-explorer.csv",
    "splunk-export.csv",
    "splunk-export.json",
    "loki-logcli-default.txt",
    "loki-logcli-jsonl.txt",
    "gcp-gcloud-logging-read.json",
}


def scan(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "kernbot", "scan", "--json", *map(str, args)],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def events(proc: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    assert b"Traceback" not in proc.stderr, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    (event,) = events(scan(CAPTURE))
    assert event["victim"]["pid"] == 22609 and event["constraint"] == "CONSTRAINT_MEMCG"
    return event


EXPORT_FILES = sorted(
    p.name for p in EXPORTS.iterdir() if p.suffix in (".csv", ".json", ".txt", ".log")
)


def test_every_documented_export_has_a_fixture() -> None:
    provenance = (EXPORTS / "PROVENANCE.md").read_text()
    assert len(EXPORT_FILES) == 13
    for name in EXPORT_FILES:
        assert f"`{name}`" in provenance, name


@pytest.mark.parametrize("name", EXPORT_FILES)
def test_an_export_gives_the_event_of_the_capture(name: str, reference: dict[str, Any]) -> None:
    proc = scan(EXPORTS / name)
    (event,) = events(proc)
    for key in SAME:
        assert event[key] == reference[key], (name, key)
    assert event["lines"] == reference["lines"], name  # the report's own lines, nothing else
    said_reversed = b"newest entries first" in proc.stderr
    assert said_reversed == (name in NEWEST_FIRST), name


@pytest.mark.parametrize("name", sorted(NEWEST_FIRST))
def test_newest_first_is_detected_from_the_times(name: str) -> None:
    assert newest_first((EXPORTS / name).read_bytes())
    assert not newest_first(CAPTURE.read_bytes())


def test_a_newest_first_export_on_a_pipe_is_read_as_it_comes(reference: dict[str, Any]) -> None:
    """A pipe cannot be read backwards: the kill line arrives first and the report is split;
    piped through `tac` (what the docs say to do) it is whole again."""
    data = (EXPORTS / "kibana-discover-report.csv").read_bytes()
    header, *rows = data.decode().splitlines(keepends=True)
    (event,) = [
        e for e in events(scan("-", stdin=header.encode() + "".join(reversed(rows)).encode()))
    ]
    assert event["victim"] == reference["victim"]


def test_a_gzipped_export_is_read_too(tmp_path: Path, reference: dict[str, Any]) -> None:
    gz = tmp_path / "cloudwatch.json.gz"
    gz.write_bytes(gzip.compress((EXPORTS / "cloudwatch-filter-log-events.json").read_bytes()))
    (event,) = events(scan(gz))
    assert event["victim"] == reference["victim"]


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("csv", "kibana-discover-report.csv"),
        ("json", "cloudwatch-filter-log-events.json"),
        ("json", "loki-logcli-jsonl.txt"),
        ("syslog", "busybox-syslogd-S.log"),
    ],
)
def test_format_forces_a_parser(fmt: str, name: str, reference: dict[str, Any]) -> None:
    (event,) = events(scan("--format", fmt, EXPORTS / name))
    assert event["victim"] == reference["victim"] and event["memcg"] == reference["memcg"]


def test_format_plain_takes_every_line_as_a_bare_message() -> None:
    """When detection is wrong the other way: lines that look like a prefix but are message."""
    line = "Dec 1 kernel: this is not a syslog line"
    (auto,) = list(read_lines([line]))
    (plain,) = list(read_lines([line], fmt="plain"))
    assert plain.text == line and plain.fmt == "plain"
    assert auto.text != line
    (event,) = events(scan("--format", "dmesg", CAPTURE))
    assert event["victim"]["pid"] == 22609


def test_an_unknown_format_is_refused() -> None:
    proc = scan("--format", "nope", CAPTURE)
    assert proc.returncode == 2 and b"invalid choice" in proc.stderr
    assert "auto" in FORCED_FORMATS


def test_busybox_syslog_lines_are_kernel_lines() -> None:
    msg = "Memory cgroup out of memory: Killed process 7 (app) total-vm:1kB"
    for line in (
        f"Feb 29 19:54:23 kernel: {msg}",
        f"Feb 29 19:54:23 router kern.warn kernel: {msg}",
    ):
        (rec,) = list(read_lines([line], year=2024))
        assert rec.fmt == "syslog" and rec.text == msg
        assert rec.wall is not None and (rec.wall.month, rec.wall.day) == (2, 29)
    (other,) = list(read_lines([f"Feb 29 19:54:23 router daemon.info sshd[1]: {msg}"]))
    assert other.fmt == "syslog-other"  # another program's line is still not kernel text


def test_two_records_glued_on_one_line_become_two() -> None:
    a = "[ 10.000001] app invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"
    b = "[ 10.000002] Memory cgroup out of memory: Killed process 7 (app) total-vm:1kB"
    for glued in (a + b, a + " " + b):
        recs = list(read_lines([glued]))
        assert [r.mono_usec for r in recs] == [10_000_001, 10_000_002]
        assert recs[1].text.startswith("Memory cgroup out of memory")


def test_bare_kernel_lines_with_quotes_and_commas_are_not_taken_apart() -> None:
    """A comm may hold `"` and `,`: a bare kernel line is never read as CSV or JSON."""
    line = 'Out of memory: Killed process 9 (a",b) total-vm:1kB, anon-rss:1kB, file-rss:0kB'
    assert embedded_message(line) is None
    (rec,) = list(read_lines([line]))
    assert rec.text == line


def test_message_extractors() -> None:
    assert json_message('  "textPayload": "a \\"b\\" \\u003cc\\u003e",') == 'a "b" <c>'
    assert json_message('  "timestamp": "2026-11-30T10:00:00Z",') is None
    assert csv_message('"Nov 30, 2026 @ 10:00:00.091",node-1,"[ 1.0] x, y"') == "[ 1.0] x, y"
    assert csv_message('"ingestionTime": 1796032800419,') is None
