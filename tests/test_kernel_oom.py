"""Real OOM kills, made by the lab in a memory cgroup, explained by the real `kernbot scan`.

Every test here makes the kernel kill a process it started and then checks that `kernbot scan`
names exactly that victim and trigger, in every log format the kernel text reaches users through.
Other tests OOM-kill processes on this machine at the same time, so events are picked by pid.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lab.kmsg import kmsg_raw_since
from lab.memcg import OomResult, memcg_oom
from lab.scan import ScanRun, run_scan
from lab.waiting import poll_until

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


def assert_is_our_oom(run: ScanRun, oom: OomResult) -> dict[str, Any]:
    """Exactly one oom_kill event for our victim, naming our trigger, cgroup and limit."""
    assert run.returncode == 0, run.explain()
    ours = run.select(oom.is_its_kill)  # pid and cgroup: the log may hold a reused pid's kill
    assert len(ours) == 1, f"{len(ours)} events for victim {oom.victim_pid}\n{run.explain()}"
    event = ours[0]
    victim, trigger, memcg = event["victim"], event["trigger"], event["memcg"]
    assert victim["comm"] == oom.victim_comm
    assert victim["oom_score_adj"] == oom.victim_oom_score_adj
    assert victim["oom_score"] is not None and victim["oom_score"] > 0
    assert trigger["pid"] == oom.trigger_pid, event
    assert trigger["comm"] == oom.trigger_comm
    assert memcg is not None, event
    assert memcg["oom_path"] == oom.cgroup
    assert memcg["limit_kb"] == oom.limit_kb
    assert event["constraint"] == "CONSTRAINT_MEMCG"
    return event


def test_lab_oom_kills_the_chosen_victim_not_the_trigger(root_kernel: None) -> None:
    """The lab itself: the kernel's own records name our victim, our trigger and our cgroup."""
    oom = memcg_oom(bystander_comm="kb-bystander")
    messages = [r.message for r in oom.records]
    assert f"Killed process {oom.victim_pid} (kb-victim)" in oom.kill_line
    # Others' OOMs (possibly with the same comms) interleave here: match on pid and cgroup.
    assert any(m.startswith("kb-trigger invoked oom-killer:") for m in messages)
    assert any(f" PID: {oom.trigger_pid} Comm: kb-trigger " in m for m in messages), messages
    assert any(
        m.startswith("oom-kill:")
        and f"oom_memcg={oom.cgroup}," in m
        and f"task=kb-victim,pid={oom.victim_pid}," in m
        for m in messages
    ), messages
    bystander = f"{oom.other_pids[0]}]"
    assert any(bystander in m and m.endswith(" kb-bystander") for m in messages), messages
    assert oom.trigger_pid != oom.victim_pid
    assert not Path(oom.cgroup_dir).exists()


def test_scan_without_arguments_reads_kmsg(real_oom: OomResult) -> None:
    assert_is_our_oom(run_scan(), real_oom)


def test_scan_raw_kmsg_records_from_stdin(real_oom: OomResult) -> None:
    raw = kmsg_raw_since(real_oom.seq_before)
    assert_is_our_oom(run_scan("-", stdin=raw), real_oom)


def test_hostile_process_names_are_reported_verbatim(root_kernel: None) -> None:
    oom = memcg_oom(victim_comm="<!channel>", trigger_comm="*bold* a b/c", bystander_comm="`x`")
    assert oom.victim_comm == "<!channel>"
    event = assert_is_our_oom(run_scan(), oom)
    assert event["trigger"]["comm"] == "*bold* a b/c"
    human = run_scan("-", stdin=kmsg_raw_since(oom.seq_before), json_output=False)
    assert human.returncode == 0, human.explain()
    assert str(oom.victim_pid) in human.stdout


@pytest.mark.parametrize("dmesg_args", [[], ["-T"], ["--time-format", "iso"], ["-x"], ["-r"]])
def test_scan_dmesg_output_file(real_oom: OomResult, tmp_path: Path, dmesg_args: list[str]) -> None:
    out = subprocess.run(["dmesg", *dmesg_args], capture_output=True, text=True, check=True)
    log = tmp_path / "dmesg.txt"
    log.write_text(out.stdout)
    assert f"Killed process {real_oom.victim_pid} " in out.stdout
    assert_is_our_oom(run_scan(str(log)), real_oom)


@pytest.mark.parametrize("output", ["json", "short", "short-precise", "short-iso"])
def test_scan_journalctl_k_output(
    journald_running: None, root_kernel: None, tmp_path: Path, output: str
) -> None:
    oom = memcg_oom()
    needle = f"Killed process {oom.victim_pid} "

    def journal() -> str:
        argv = ["journalctl", "-k", "--no-pager", "-o", output]
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout

    assert poll_until(lambda: needle in journal(), 15), f"journald never stored {needle!r}"
    log = tmp_path / f"journal-{output}.txt"
    log.write_text(journal())
    assert_is_our_oom(run_scan(str(log)), oom)


def test_scan_rsyslog_kern_log(rsyslog_kern_log: str, root_kernel: None, tmp_path: Path) -> None:
    oom = memcg_oom()
    needle = f"Killed process {oom.victim_pid} "
    kern_log = Path(rsyslog_kern_log)
    in_log = poll_until(lambda: needle in kern_log.read_text(errors="replace"), 15)
    assert in_log, f"{kern_log} never got {needle!r}"
    copy = tmp_path / "kern.log"
    copy.write_text(kern_log.read_text(errors="replace"))
    assert_is_our_oom(run_scan(str(copy)), oom)


def test_lab_says_why_it_cannot_run_without_root(root_kernel: None) -> None:
    """Elsewhere the kernel tests skip with a reason: check it from a process that drops root."""
    code = (
        "import os, sys; sys.path.insert(0, 'tests'); import lab.privileges as p; "
        "os.setgroups([]); os.setgid(65534); os.setuid(65534); print(p.why_not_root_kernel())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "needs root (real OOM kills in a memory cgroup, /dev/kmsg)"
