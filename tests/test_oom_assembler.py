# ruff: noqa: E501  (real kernel lines and cgroup paths are longer than 100 characters)
"""Live semantics of OomAssembler: when events go out, how updates keep their id, boundaries."""

from __future__ import annotations

from kernbot.core.events import MAX_LINES, OomKillEvent
from kernbot.core.oom.report import OomAssembler
from kernbot.core.record import Record

BOOT = "7d3c1a52-0c5e-4c0b-9c7e-1f2e3d4c5b6a"

# A 6.x memcg report (shape of the proxmox/EKS captures), without the stack.
REPORT = [
    "{comm} invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    "CPU: 1 PID: {pid} Comm: {comm} Not tainted 6.8.0-45-generic #45-Ubuntu",
    "memory: usage 102400kB, limit 102400kB, failcnt 12",
    "swap: usage 0kB, limit 0kB, failcnt 0",
    "Memory cgroup stats for /system.slice/kbt-{pid}.service:",
    "Tasks state (memory values in pages):",
    "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name",
    "[{pid:7d}]     0 {pid:5d}    30000    25000    24900      100         0   262144        0             0 {comm}",
    "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/system.slice/kbt-{pid}.service,task_memcg=/system.slice/kbt-{pid}.service,task={comm},pid={pid},uid=0",
    "Memory cgroup out of memory: Killed process {pid} ({comm}) total-vm:120000kB, anon-rss:99600kB, file-rss:400kB, shmem-rss:0kB, UID:0 pgtables:256kB oom_score_adj:0",
]
REAPER = "oom_reaper: reaped process {pid} ({comm}), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"


class Feeder:
    """Feeds text lines as kmsg-like records with increasing seq and monotonic time."""

    def __init__(self, asm: OomAssembler, seq: int = 100, usec: int = 5_000_000) -> None:
        self.asm, self.seq, self.usec = asm, seq, usec

    def line(self, text: str, *, advance_usec: int = 10) -> list[OomKillEvent]:
        self.seq += 1
        self.usec += advance_usec
        return self.asm.feed(Record(text=text, seq=self.seq, mono_usec=self.usec, fmt="kmsg"))

    def lines(self, texts: list[str], **kw: object) -> list[OomKillEvent]:
        out: list[OomKillEvent] = []
        for t in texts:
            out += self.line(t.format(**kw))
        return out


def test_emits_at_the_kill_line_then_updates_with_reaper_two_seconds_later() -> None:
    asm = OomAssembler(host="node1", boot_id=BOOT)
    f = Feeder(asm)
    before = f.lines(REPORT[:-1], pid=4242, comm="leaky")
    assert before == [] and asm.pending
    (first,) = f.line(REPORT[-1].format(pid=4242, comm="leaky"))
    assert first.revision == 0 and first.complete
    assert first.id == f"{BOOT}:101" and first.seq == 101 and first.host == "node1"
    assert first.victim.pid == 4242 and first.reaper is None
    assert not asm.pending
    # two seconds of unrelated kernel chatter, including a SYN flood line
    for i in range(200):
        assert f.line(f"eth0: link flap {i}", advance_usec=10_000) == []
    assert f.line("TCP: request_sock_TCP: Possible SYN flooding on port 80. Sending cookies.") == []
    (update,) = f.line(REAPER.format(pid=4242, comm="leaky"))
    assert update.id == first.id and update.revision == 1
    assert update.reaper is not None and update.reaper.pid == 4242
    assert update.victim == first.victim
    assert "eth0: link flap 3" not in update.lines
    assert asm.flush() == []


def test_back_to_back_reports_get_distinct_ids_and_late_reapers_find_their_report() -> None:
    asm = OomAssembler(boot_id=BOOT)
    f = Feeder(asm)
    a = f.lines(REPORT, pid=1001, comm="first")
    b = f.lines(REPORT, pid=1002, comm="second")
    assert [e.victim.pid for e in a + b] == [1001, 1002]
    assert a[0].id != b[0].id
    (late,) = f.line(REAPER.format(pid=1001, comm="first"))
    assert late.id == a[0].id and late.revision == 1
    assert f.line("oom_reaper: unable to reap pid:1002 (second)")[0].reaper.reaped is False  # type: ignore[union-attr]


def test_truncated_report_is_emitted_incomplete_on_next_header_and_on_flush() -> None:
    asm = OomAssembler(boot_id=BOOT)
    f = Feeder(asm)
    assert f.lines(REPORT[:8], pid=7, comm="cut") == []
    assert asm.pending
    closed = f.lines(REPORT[:1], pid=8, comm="next")
    assert len(closed) == 1 and closed[0].complete is False
    assert closed[0].victim.pid is None and closed[0].trigger.pid == 7
    assert len(closed[0].tasks) == 1
    (flushed,) = asm.flush()
    assert flushed.trigger.comm == "next" and flushed.complete is False
    assert not asm.pending and asm.flush() == []


def test_a_long_silence_ends_a_report_that_never_reached_its_kill_line() -> None:
    asm = OomAssembler(boot_id=BOOT)
    f = Feeder(asm)
    f.lines(REPORT[:3], pid=9, comm="stuck")
    out = f.line("random later message", advance_usec=60_000_000)
    assert len(out) == 1 and out[0].complete is False and not asm.pending


def test_interleaved_unrelated_messages_inside_the_report_do_not_break_it() -> None:
    asm = OomAssembler(boot_id=BOOT)
    f = Feeder(asm)
    out: list[OomKillEvent] = []
    for i, t in enumerate(REPORT):
        out += f.line(t.format(pid=55, comm="mixed"))
        out += f.line(f"usb 1-1: new device {i}")
    (e,) = out
    assert e.victim.pid == 55 and e.memcg is not None and e.memcg.limit_kb == 102400
    assert len(e.tasks) == 1 and e.tasks[0].name == "mixed"


def test_hostile_comms_survive_every_line_kind() -> None:
    for comm in [
        "<!channel>",
        "*bold*",
        "runc:[2:INIT]",
        "a b/c",
        "x) total-vm:1kB",
        "(",
        "a,task=b",
    ]:
        asm = OomAssembler(boot_id=BOOT)
        f = Feeder(asm)
        (e,) = f.lines(REPORT, pid=31337, comm=comm)
        assert e.trigger.comm == comm
        assert e.trigger.pid == 31337
        assert e.victim.comm == comm
        assert e.victim.pid == 31337 and e.victim.anon_rss_kb == 99600
        assert e.tasks[0].name == comm
        (u,) = f.line(REAPER.format(pid=31337, comm=comm))
        assert u.reaper is not None and u.reaper.comm == comm


def test_memory_oom_group_adds_victims_under_the_same_id() -> None:
    asm = OomAssembler(boot_id=BOOT)
    f = Feeder(asm)
    (e,) = f.lines(REPORT, pid=10, comm="g1")
    path = "/system.slice/kbt-10.service"
    upd = f.line(f"Tasks in {path} are going to be killed due to memory.oom.group set")
    for pid in (10, 11):
        upd += f.line(REPORT[-1].format(pid=pid, comm=f"g{pid}"))
    last = upd[-1]
    assert last.id == e.id and last.group_kill and last.revision == len(upd)
    assert [v.pid for v in last.group_victims] == [10, 11]


def test_id_without_boot_id_is_a_stable_hash_of_the_first_record() -> None:
    def run() -> str | None:
        asm = OomAssembler(host="h1")
        events = Feeder(asm).lines(REPORT, pid=3, comm="x")
        return events[0].id

    first, second = run(), run()
    assert first == second and first is not None and ":" not in first
    asm = OomAssembler(host="h2")
    assert Feeder(asm).lines(REPORT, pid=3, comm="x")[0].id != first


def test_lines_are_bounded_but_keep_the_head_and_the_kill_lines() -> None:
    asm = OomAssembler(boot_id=BOOT)
    f = Feeder(asm)
    rows = [
        f"[{p:7d}]     0 {p:5d}      100       10       10        0         0     4096        0             0 w{p}"
        for p in range(20000, 23000)
    ]
    out = f.lines(REPORT[:7], pid=1, comm="big")
    for r in rows:
        out += f.line(r)
    out += f.lines(REPORT[7:], pid=1, comm="big")
    (e,) = out
    assert len(e.lines) <= MAX_LINES
    assert e.lines[0].endswith(
        "invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"
    )
    assert e.lines[-1].startswith("Memory cgroup out of memory: Killed process 1 (big)")
    assert any(line.startswith("oom-kill:") for line in e.lines)
    assert len(e.tasks) == 3001
    assert e.model_dump()["lines_omitted"] > 0


def test_unrelated_input_produces_nothing() -> None:
    asm = OomAssembler()
    f = Feeder(asm)
    for t in ["Mem-Info:", "Node 0 DMA free:15888kB min:28kB managed:15360kB", "hello", ""]:
        assert f.line(t) == []
    assert asm.flush() == []


def test_reaper_of_the_previous_victim_while_the_next_report_is_open() -> None:
    asm = OomAssembler(boot_id=BOOT)
    f = Feeder(asm)
    (a,) = f.lines(REPORT, pid=2001, comm="one")
    assert f.lines(REPORT[:5], pid=2002, comm="two") == []
    (upd,) = f.line(REAPER.format(pid=2001, comm="one"))
    assert upd.id == a.id and upd.revision == 1
    assert asm.pending
    (b,) = f.lines(REPORT[5:], pid=2002, comm="two")
    assert b.victim.pid == 2002 and b.reaper is None and b.id != a.id


def test_absorbing_stays_true_for_an_emitted_fragment_until_its_kill_line() -> None:
    asm = OomAssembler(boot_id=BOOT)
    f = Feeder(asm)
    assert not asm.absorbing
    # a headerless fragment: counters, then a reaper line that only this open report can own
    assert f.lines(REPORT[2:4], pid=77, comm="frag") == []
    assert asm.pending and asm.absorbing
    (early,) = f.line("oom_reaper: unable to reap pid:77 (frag)")
    assert early.complete is False
    assert not asm.pending and asm.absorbing  # emitted, yet still taking lines
    (done,) = f.lines(REPORT[-1:], pid=77, comm="frag")
    assert done.id == early.id and done.complete
    assert not asm.pending and not asm.absorbing
    assert asm.flush() == [] and not asm.absorbing
