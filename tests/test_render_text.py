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
    events = detect_bytes((CORPUS / name).read_bytes())
    return events[0]


def test_global_oom_block() -> None:
    text = render_event(one("oom-arch-6.1.1-global.txt"))
    lines = text.splitlines()
    assert lines[0] == "OOM kill (system-wide)"
    assert "  killed   doxygen (pid 473206, uid 504)" in lines
    assert any(
        ln.startswith("  scope    the whole host ran out of memory (RAM 15.7 GiB") for ln in lines
    )
    assert "  score    oom_score 1154, oom_score_adj 0" in lines
    assert any(ln.startswith("  top      doxygen (pid 473206) rss 8.8 GiB") for ln in lines)
    assert "  advice" in lines
    assert "   !! The host ran out of memory: see who is using it" in lines
    assert "       $ free -m" in lines


def test_memcg_block_with_pod_and_trigger() -> None:
    text = render_event(one("oom-6.x-k8s-systemd-containerd-cgv2-memcg-grep.txt"))
    assert text.startswith("OOM kill at [2993.661240] (memory cgroup limit)")
    assert "usage 4.0 GiB of 4.0 GiB (failcnt 1273284)" in text
    assert "  trigger  Thread-2 asked for memory: gfp_mask=0xcc0(GFP_KERNEL), order=0" in text
    assert "  pod      uid 94eb36cd-29e1-478b-b365-4cb5dfc7d6fb (qos burstable" in text


def test_syn_block() -> None:
    text = render_event(one("syn-3.17to6.1-request_sock_TCPv6-dropping-dmesgT-ru-locale.txt"))
    lines = text.splitlines()
    assert lines[0] == "SYN flood at 2021-03-10T20:19:39"
    assert lines[1] == "  listener port 34391 (ipv6, proto request_sock_TCPv6)"
    assert lines[2].startswith("  action   dropping connection requests")
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
    assert "(partial report)" in partial.splitlines()[0]
    assert "the whole host" not in partial
    panic = render_event(one("oom-panic_on_oom-sles15sp4-5.14.21.txt"))
    assert "the kernel panicked: panic_on_oom" in panic.splitlines()[0]


def test_oom_block_opens_with_why_and_the_accounting_bar() -> None:
    lines = render_event(one("oom-rhel8-4.18.0-147-k8s-systemd-docker-cgv1-memcg.txt")).splitlines()
    assert lines[1] == (
        "  Why: the cgroup hit its memory+swap limit (34,816 MiB); shmem/tmpfs held 27,357 MiB"
        " (86%), which killing does not free."
    )
    assert lines[2].startswith("  [██▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒·] █ anon 12%, ▒ shmem 83%")
    advice = lines.index("  advice")
    assert lines[advice + 1].startswith("   !! Shared memory (tmpfs, /dev/shm) filled the memory")
