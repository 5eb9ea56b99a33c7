"""What an OOM event may claim, from corner cases seen in real pastes (issue 11).

Lines follow the kernel's format strings (mm/oom_kill.c: `dump_header`, `oom_kill_process`,
`__oom_kill_process`, `oom_reap_task_mm`; lib/ratelimit.c: `%s: %d callbacks suppressed`).
"""

from __future__ import annotations

import subprocess
import sys

from kernbot.core.detector import detect
from kernbot.core.events import OomKillEvent
from kernbot.core.formats.reader import read_lines

HEADER = "[{t}] app invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"
COUNTER = "[{t}] memory: usage 102400kB, limit 102400kB, failcnt 12"
KILLED = (
    "[{t}] Memory cgroup out of memory: Killed process {pid} ({comm}) total-vm:120000kB, "
    "anon-rss:99600kB, file-rss:400kB, shmem-rss:0kB, UID:0 pgtables:256kB oom_score_adj:0"
)
REAPED = (
    "[{t}] oom_reaper: reaped process {pid} ({comm}), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"
)
SUPPRESSED = "[{t}] oom_kill_process: {n} callbacks suppressed"


def ooms(lines: list[str]) -> list[OomKillEvent]:
    return [e for e in detect(read_lines(lines)) if isinstance(e, OomKillEvent)]


def scan_text(lines: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kernbot", "scan", "-"],
        input="".join(line + "\n" for line in lines).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.stdout.decode()


def test_a_header_without_a_kill_line_is_not_a_kill() -> None:
    lines = [HEADER.format(t="10.000001"), COUNTER.format(t="10.000002")]
    (e,) = ooms(lines)
    assert e.killed is False and e.complete is False
    # The report is printed, but the summary does not count it as a kill.
    assert scan_text(lines).splitlines()[-1] == "No OOM kills or SYN floods found."


def test_a_kill_is_a_kill_and_is_counted() -> None:
    lines = [
        HEADER.format(t="10.000001"),
        COUNTER.format(t="10.000002"),
        KILLED.format(t="10.000003", pid=7, comm="app"),
    ]
    (e,) = ooms(lines)
    assert e.killed is True and e.report_suppressed is False
    assert scan_text(lines).splitlines()[-1] == "Found 1 OOM kill (app)."


def test_the_printed_score_belongs_to_the_task_chosen_not_to_the_child_killed() -> None:
    lines = [
        HEADER.format(t="10.000001"),
        COUNTER.format(t="10.000002"),
        "[10.000003] Memory cgroup out of memory: Kill process 100 (parent) score 990 or "
        "sacrifice child",
        KILLED.format(t="10.000004", pid=101, comm="child"),
    ]
    (e,) = ooms(lines)
    assert (e.victim.pid, e.victim.comm) == (101, "child")
    assert e.victim.printed_score is None  # 990 was the parent's
    same = [*lines[:2], lines[2], KILLED.format(t="10.000004", pid=100, comm="parent")]
    assert ooms(same)[0].victim.printed_score == 990


def test_stray_reaper_lines_make_one_event_per_pid() -> None:
    """A reaper line without its report is evidence of a kill whose report was lost; the same
    line repeated (pasted twice, or two logs concatenated) is still one kill."""
    lines = [REAPED.format(t=f"20.00000{i}", pid=55, comm="lost") for i in range(3)]
    lines.append(REAPED.format(t="20.000009", pid=56, comm="other"))
    events = ooms(lines)
    assert [(e.victim.pid, e.killed) for e in events] == [(55, True), (56, True)]


def test_a_kill_line_alone_in_an_oom_storm_is_a_memcg_kill_with_a_suppressed_report() -> None:
    """Past 10 reports in 5 s, the kernel prints only the kill line of each further kill and
    later `oom_kill_process: N callbacks suppressed`. What the line proves still holds."""
    lines = [
        KILLED.format(t="30.000001", pid=71, comm="stress"),
        KILLED.format(t="30.100001", pid=72, comm="stress"),
        SUPPRESSED.format(t="35.000001", n=2),
    ]
    events = ooms(lines)
    assert [e.victim.pid for e in events] == [71, 72]
    for e in events:
        assert e.killed is True and e.report_suppressed is True
        assert e.constraint == "CONSTRAINT_MEMCG" and e.global_oom is False
        assert e.memcg is not None
        assert e.victim.anon_rss_kb == 99600 and e.victim.file_rss_kb == 400
    assert scan_text(lines).splitlines()[-1] == "Found 2 OOM kills (stress)."
