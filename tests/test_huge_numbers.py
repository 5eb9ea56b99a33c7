"""A number longer than Python's `int` converts (4,300 digits) anywhere in a kernel log.

No kernel prints one, but a pasted, forged or garbled log can: it used to end `kernbot scan`
with a traceback (and would have stopped the agent's pipeline on a file or journal source). Now
the line holding it reads as a line of no kind, like any garbled line; an OOM report whose
diagnosis meets it says so in `diagnosis_gaps`; everything else in the log is still found.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kernbot.core.events import OomKillEvent
from kernbot.core.oom.diagnosis import UNREADABLE_NUMBER
from kernbot.core.prefilter import detect_bytes

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
HUGE = "9" * 5000
FILES = [
    "oom-proxmox-5.15-cgv2-lxc-docker-memcg.txt",  # cgroup v2 memory.stat, 5.x kill line
    "oom-arch-6.1.1-global.txt",  # Mem-Info, zones, buddy lists, global kill
    "oom-3.2-rc3-global-oom_adj-era.txt",  # `Kill process ... score N or sacrifice child`
    "oom-kmsg-raw-k8s-systemd-docker-cgv1-memcg.txt",  # raw kmsg records (`6,473,...;`)
    "syn-3.17to6.1-request_sock_TCP-port-only-dmesg-2015.txt",
    "syn-6.2plus-addr-ipv4-any-email-wrapped.txt",
]


def _mutations(text: str) -> list[tuple[int, str]]:
    """Each of the first three digit runs of each line replaced by `HUGE`, one at a time."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        for m in list(re.finditer(r"\d+", line))[:3]:
            changed = [*lines[:i], line[: m.start()] + HUGE + line[m.end() :], *lines[i + 1 :]]
            out.append((i, "\n".join(changed) + "\n"))
    return out


@pytest.mark.parametrize("name", FILES)
def test_a_huge_number_on_any_line_never_stops_the_scan(name: str) -> None:
    text = (CORPUS / name).read_text()
    whole = detect_bytes(text.encode())
    assert whole, name
    mutations = _mutations(text)
    assert len(mutations) >= 8
    for lineno, mutated in mutations:
        events = detect_bytes(mutated.encode())
        for ev in events:
            json.loads(ev.model_dump_json())
        # one line made unreadable loses at most that line's event, never the rest
        assert len(events) >= len(whole) - 1, (name, lineno)


def test_a_report_whose_numbers_cannot_be_read_says_so_and_keeps_the_kill() -> None:
    text = (CORPUS / FILES[0]).read_text().replace("anon 31154200576", f"anon {HUGE}")
    (ev,) = detect_bytes(text.encode())
    data = json.loads(ev.model_dump_json())
    assert data["victim"]["pid"] == 3902942 and data["killed"] is True
    assert data["memcg"]["usage_kb"] == 31211520
    assert data["diagnosis"] == [] and data["diagnosis_gaps"] == [UNREADABLE_NUMBER]
    # the same report without the huge number is diagnosed: the gap above comes from it
    (plain,) = detect_bytes((CORPUS / FILES[0]).read_bytes())
    assert isinstance(plain, OomKillEvent)
    assert plain.diagnosis and UNREADABLE_NUMBER not in plain.diagnosis_gaps


def test_a_huge_port_is_not_a_syn_flood_and_not_a_crash() -> None:
    line = (
        f"[ 2992.936177] TCP: request_sock_TCP: Possible SYN flooding on port {HUGE}. "
        "Sending cookies.\n"
    )
    assert detect_bytes(line.encode()) == []


def test_kernbot_scan_exits_0_on_such_a_log(tmp_path: Path) -> None:
    log = tmp_path / "huge.log"
    log.write_text((CORPUS / FILES[0]).read_text().replace("usage 31211520kB", f"usage {HUGE}kB"))
    run = subprocess.run(
        [sys.executable, "-m", "kernbot", "scan", "--json", str(log)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    kills = [e for e in events if e.get("kind") == "oom_kill"]
    assert [e["victim"]["pid"] for e in kills] == [3902942]
