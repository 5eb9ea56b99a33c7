"""Corner-case OOM lines (PROVENANCE.md 1e/1f) and ids of reports without any time.

Each sample is built from the kernel's own format string (mm/oom_kill.c, drivers/tty/sysrq.c)
with `%`, so a typo in a regex cannot hide behind a typo in a hand-written sample.
"""

from __future__ import annotations

import pytest

from kernbot.core.detector import detect
from kernbot.core.events import OomKillEvent
from kernbot.core.formats.reader import read_lines
from kernbot.core.oom import lines as ol
from kernbot.core.oom.report import OomAssembler
from kernbot.core.record import Record

EXITING = "%s: OOM victim %d (%s) is already exiting. Skip killing the task"
PINNED = "oom killer %d (%s) has mm pinned by %d (%s)"
KILLED = (
    (
        "%s: Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, file-rss:%lukB, "
        "shmem-rss:%lukB, UID:%u pgtables:%lukB oom_score_adj:%hd"
    )
    .replace("%lu", "%d")
    .replace("%u", "%d")
    .replace("%hd", "%d")
)
MEMCG_MSG = "Memory cgroup out of memory"
HOSTILE = ("<!channel>", "*bold*", "runc:[2:INIT]", "a b/c", "x) (y")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *[
            (EXITING % (msg, 3804877, comm), ol.VictimExiting(pid=3804877, comm=comm))
            for msg in (MEMCG_MSG, "Out of memory")
            for comm in HOSTILE
        ],
        *[
            (PINNED % (4242, comm, 1, "systemd"), ol.MmPinned(4242, comm, 1, "systemd"))
            for comm in HOSTILE
        ],
        ("sysrq: Manual OOM execution", ol.SysrqOom()),  # 5.x: pr_fmt "sysrq: "
        ("sysrq: SysRq : Manual OOM execution", ol.SysrqOom()),  # 4.x
        ("SysRq : Manual OOM execution", ol.SysrqOom()),  # 2.6/3.x
        (
            "sysrq: " + "OOM request ignored. No task eligible",
            ol.SysrqOom(ignored=True, reason="No task eligible"),
        ),
        (
            "OOM request ignored. No task eligible",
            ol.SysrqOom(ignored=True, reason="No task eligible"),
        ),
        (
            "sysrq: OOM request ignored because killer is disabled",
            ol.SysrqOom(ignored=True, reason="because killer is disabled"),
        ),
        ("OOM killer disabled.", None),
        ("sysrq: Show Memory", None),
    ],
)
def test_corner_line_kinds(text: str, expected: ol.Parsed | None) -> None:
    assert ol.parse_line(text) == expected


def test_corner_kinds_never_start_a_report() -> None:
    """Alone they say nothing was killed; the prefilter need not look for them."""
    for kind in (ol.VictimExiting, ol.MmPinned, ol.SysrqOom):
        assert kind not in ol.REPORT_STARTERS
    asm = OomAssembler()
    for text in (EXITING % (MEMCG_MSG, 5, "x"), PINNED % (5, "x", 1, "init")):
        assert asm.feed(Record(text=text)) == [] and not asm.absorbing
    assert asm.flush() == []


HEADER = "{comm} invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order={order}, oom_score_adj=0"
SUMMARY = (
    "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
    "oom_memcg=/kbt,task_memcg=/kbt,task={comm},pid={pid},uid=0"
)
COUNTER = "memory: usage 102400kB, limit 102400kB, failcnt 12"


class Feeder:
    def __init__(self) -> None:
        self.asm = OomAssembler(boot_id="b")
        self.seq, self.usec = 0, 1_000_000
        self.out: list[OomKillEvent] = []

    def __call__(self, *texts: str, gap_usec: int = 10) -> list[OomKillEvent]:
        got: list[OomKillEvent] = []
        for text in texts:
            self.seq += 1
            self.usec += gap_usec
            got += self.asm.feed(Record(text=text, seq=self.seq, mono_usec=self.usec))
        self.out += got
        return got


def _killed(pid: int, comm: str) -> str:
    return KILLED % (MEMCG_MSG, pid, comm, 1000, 900, 100, 0, 0, 8, 0)


def test_victim_already_exiting_is_recorded_on_the_killless_report() -> None:
    f = Feeder()
    f(HEADER.format(comm="w", order=0), COUNTER, SUMMARY.format(comm="*bold*", pid=7))
    assert f(EXITING % (MEMCG_MSG, 7, "*bold*")) == [] and f.asm.absorbing
    (e,) = f.asm.flush()
    assert e.complete is False and e.victim.pid == 7
    assert e.model_dump()["exiting_victims"] == [{"pid": 7, "comm": "*bold*"}]


def test_group_kill_records_members_that_were_already_exiting() -> None:
    f = Feeder()
    f(HEADER.format(comm="w", order=0), COUNTER, SUMMARY.format(comm="s", pid=10), _killed(10, "s"))
    f("Tasks in /kbt are going to be killed due to memory.oom.group set", _killed(10, "s"))
    f(EXITING % (MEMCG_MSG, 11, "s"), _killed(12, "s"))
    last = f.out[-1]
    assert [v.pid for v in last.group_victims] == [10, 12]
    assert last.model_dump()["exiting_victims"] == [{"pid": 11, "comm": "s"}]
    assert {e.id for e in f.out} == {f.out[0].id}


def test_mm_pinned_by_init_updates_the_emitted_event() -> None:
    f = Feeder()
    (e,) = f(HEADER.format(comm="w", order=0), COUNTER, _killed(20, "a b/c"))
    (u,) = f(PINNED % (20, "a b/c", 1, "systemd"))
    assert u.id == e.id and u.revision == 1
    assert u.model_dump()["mm_pinned_by"] == {"pid": 1, "comm": "systemd"}
    assert f(PINNED % (99, "other", 1, "systemd")) == []  # not this report's victim
    assert e.mm_pinned_by is None


def test_sysrq_manual_oom_marks_the_next_report() -> None:
    f = Feeder()
    f("sysrq: Manual OOM execution", "usb 1-1: noise")
    (e,) = f(HEADER.format(comm="kworker/0:2", order=0), COUNTER, _killed(30, "x"))
    assert e.model_dump()["sysrq"] is True
    (plain,) = f(HEADER.format(comm="w", order=0), COUNTER, _killed(31, "y"))
    assert plain.sysrq is False


def test_a_stale_sysrq_line_does_not_mark_a_later_report() -> None:
    f = Feeder()
    f("sysrq: Manual OOM execution")
    f(HEADER.format(comm="w", order=0), gap_usec=60_000_000)
    (e,) = f(COUNTER, _killed(40, "x"))
    assert e.sysrq is False
    f("sysrq: Manual OOM execution", *[f"noise {i}" for i in range(401)])
    (far,) = f(HEADER.format(comm="w", order=0), COUNTER, _killed(41, "x"))
    assert far.sysrq is False


def test_sysrq_with_no_eligible_task_is_recorded() -> None:
    f = Feeder()
    f("sysrq: Manual OOM execution", HEADER.format(comm="kworker/1:1", order=-1), COUNTER)
    f("Out of memory and no killable processes...")
    f("sysrq: OOM request ignored. No task eligible")
    (e,) = f.asm.flush()
    dump = e.model_dump()
    assert dump["sysrq"] is True and dump["sysrq_ignored"] == "No task eligible"
    assert e.complete is False and e.victim.pid is None


def test_order_minus_one_alone_is_a_sysrq_oom() -> None:
    f = Feeder()
    (e,) = f(HEADER.format(comm="kworker/1:1", order=-1), COUNTER, _killed(50, "x"))
    assert e.model_dump()["sysrq"] is True


# Year-less syslog: no seq, no monotonic time, no wall time; two identical grep'd kills.
YEARLESS = [
    "Mar  3 05:57:48 web1 kernel: " + _killed(12, "same"),
    "Mar  3 05:57:49 web1 kernel: usb 1-1: noise",
    "Mar  3 06:10:02 web1 kernel: " + _killed(12, "same"),
]


def test_ids_without_any_time_are_distinct_per_report_and_stable() -> None:
    assert all(r.wall is None and r.mono_usec is None for r in read_lines(YEARLESS))
    first = [e.id for e in detect(read_lines(YEARLESS), host="web1")]
    again = [e.id for e in detect(read_lines(YEARLESS), host="web1")]
    assert len(first) == 2 and first[0] != first[1]
    assert first == again
    assert all(i and ":" not in i for i in first)


def test_ids_with_a_time_do_not_depend_on_the_line_number() -> None:
    line = "[ 5.000001] " + _killed(12, "same")
    a = detect(read_lines([line]))
    b = detect(read_lines(["[ 4.000000] usb 1-1: noise", line]))
    assert a[0].id == b[0].id
