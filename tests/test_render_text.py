"""Terminal rendering: readable blocks from real events, and kernel text that cannot drive a tty."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernbot.core.events import (
    Advice,
    Kubernetes,
    Memcg,
    OomKillEvent,
    SynFloodEvent,
    Task,
    Trigger,
    Victim,
)
from kernbot.core.prefilter import detect_bytes
from kernbot.render_text import escape_terminal, render_event, render_events, render_summary

CORPUS = Path(__file__).parent / "fixtures" / "corpus"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("a\rb\nc\td", "a\\x0db\\x0ac\\x09d"),
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("\u202egnp.exe", "\\u202egnp.exe"),  # right-to-left override
        ("x\u2028y", "x\\u2028y"),
        ("runc:[2:INIT]", "runc:[2:INIT]"),
        ("Web Content ü 中文", "Web Content ü 中文"),
    ],
)
def test_escape_terminal(raw: str, shown: str) -> None:
    assert escape_terminal(raw) == shown


def one(name: str) -> OomKillEvent | SynFloodEvent:
    ev = detect_bytes((CORPUS / name).read_bytes())[0]
    assert isinstance(ev, OomKillEvent | SynFloodEvent)  # the log detectors make no oom_risk
    return ev


def test_global_oom_block() -> None:
    text = render_event(one("oom-arch-6.1.1-global.txt"))
    lines = text.splitlines()
    assert lines[0] == "💀 OOM kill: doxygen (pid 473206)"
    assert lines[1] == (
        "Why: doxygen (pid 473206) alone held 8.8 GiB (57%); kernel memory held 3.1 GiB (20%)."
    )
    assert lines[2].startswith("[███████████████░▪▪▪▪] █ anon 72%, ░ slab 5%, ▪ other 21%")
    assert lines[3] == (
        "The kernel killed doxygen (pid 473206) because the whole host ran out of memory "
        "(system-wide)."
    )
    assert "  Killed:           doxygen (pid 473206), uid 504" in lines
    assert "  Victim oom_score: 1154 on the /proc/PID/oom_score scale" in lines
    assert "  Host memory then: RAM 135.3 MiB free of 15.7 GiB, swap 84 KiB free of 24.0 GiB" in (
        lines
    )
    assert "  Top memory users in the report (112 tasks)" in lines
    assert any(ln.startswith("    473206  8.8 GiB") for ln in lines)
    assert "  advice" in lines
    assert "   !! The host ran out of memory: see who is using it" in lines
    assert "       $ free -m" in lines


def test_memcg_block_with_pod_and_trigger() -> None:
    text = render_event(one("oom-6.x-k8s-systemd-containerd-cgv2-memcg-grep.txt"))
    assert text.startswith(
        "💀 OOM kill: node (pid 22609)\nWhy: the cgroup hit its 4.0 GiB limit; what filled it is"
        " not in this part of the log.\n"
        "The kernel killed node (pid 22609) because"
    )
    assert "4.0 GiB used of 4.0 GiB, failcnt 1273284" in text
    assert "  Asked for memory: Thread-2: order 0, gfp_mask 0xcc0(GFP_KERNEL)" in text
    assert "uid 94eb36cd-29e1-478b-b365-4cb5dfc7d6fb, name not resolved (QoS burstable)" in text
    assert "on the memory cgroup's scale" in text
    assert "memory.oom.group: the whole cgroup was killed (1 process)" in text


def test_syn_block() -> None:
    text = render_event(one("syn-3.17to6.1-request_sock_TCPv6-dropping-dmesgT-ru-locale.txt"))
    lines = text.splitlines()
    assert lines[0] == "🌊 SYN flood, port 34391"
    assert lines[1].startswith("The kernel is dropping connection requests")
    assert "  When:     2021-03-10T20:19:39" in lines
    assert "  Listener: port 34391 (ipv6, proto request_sock_TCPv6)" in lines
    assert "   !! SYN cookies are off: the kernel is dropping connection attempts" in lines


def test_every_field_from_the_kernel_is_escaped() -> None:
    bad = "\x1b[31mX"
    ev = OomKillEvent(
        host=bad,
        time=bad,
        constraint="CONSTRAINT_MEMCG",
        trigger=Trigger(comm=bad, pid=1, gfp_mask=bad),
        victim=Victim(pid=2, comm=bad),
        memcg=Memcg(oom_path=bad, task_path=bad + "/c", usage_kb=1, limit_kb=2),
        kubernetes=Kubernetes(namespace=bad, pod=bad, container=bad, container_id=bad),
        tasks=[Task(pid=3, name=bad, rss_kb=5)],
        advice=[Advice(title=bad, why=bad, commands=[bad])],
    )
    syn = SynFloodEvent(host=bad, addr=bad, port=1, proto=bad)
    out = render_events([ev, syn])
    assert "\x1b" not in out
    assert out.count("\\x1b[31mX") >= 14


def test_summary_lines() -> None:
    assert render_summary([]) == "No OOM kills or SYN floods found."
    evs = detect_bytes((CORPUS / "syn-6.2plus-addr-ipv4-printk-caller.txt").read_bytes())
    assert render_summary(evs) == "Found 10 SYN flood messages (port 23456)."
    oom = one("oom-arch-6.1.1-global.txt")
    assert render_summary([oom, evs[0]]) == (
        "Found 1 OOM kill (doxygen) and 1 SYN flood message (port 23456)."
    )


def test_partial_and_panic_reports_say_what_is_known() -> None:
    partial = render_event(one("oom-rhel6-2.6.32-573-killed-process-UID-variant-line.txt"))
    assert "why (which limit, or the whole host) is not in this part of the log" in partial
    assert "the whole host ran out" not in partial and "memory cgroup" not in partial
    panic = render_event(one("oom-panic_on_oom-sles15sp4-5.14.21.txt"))
    assert panic.splitlines()[0].endswith("the kernel panicked, no process killed")
    assert panic.splitlines()[1] == (
        "Why: not judged: not in the report: Mem-Info (free, anon, page cache, shmem, slab)."
    )
    assert panic.splitlines()[2].startswith("No process was killed: the kernel panicked")
    assert "Killed:" not in panic and "None" not in panic


def test_oom_block_opens_with_why_and_the_accounting_bar() -> None:
    lines = render_event(one("oom-rhel8-4.18.0-147-k8s-systemd-docker-cgv1-memcg.txt")).splitlines()
    assert lines[1] == (
        "Why: the cgroup hit its memory+swap limit (34.0 GiB); shmem/tmpfs held 26.7 GiB (86%),"
        " which killing does not free."
    )
    assert lines[2].startswith("[██▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒·] █ anon 12%, ▒ shmem 83%")
    assert lines[3].startswith("The kernel killed java (pid 7093) because memory cgroup")
    advice = lines.index("  advice")
    assert lines[advice + 1].startswith("   !! Shared memory (tmpfs, /dev/shm) filled the memory")
