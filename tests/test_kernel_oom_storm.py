"""A real memcg OOM storm: the kernel rate-limits its reports; `kernbot scan` counts every kill.

mm/oom_kill.c prints the report (`dump_header`) only while `__ratelimit(&oom_rs)` allows it: 10
reports per 5 s (DEFAULT_RATELIMIT_BURST / _INTERVAL). Past that each further kill prints only
`Memory cgroup out of memory: Killed process …`, and the next report after the window says
`oom_kill_process: N callbacks suppressed` (lib/ratelimit.c). The window is shared with every
other OOM on the machine, so this test makes enough kills of its own to be sure to cross it.
Run it under `flock /tmp/kernbot-kernel.lock`, as every test that makes real OOM kills.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid

import pytest

from lab._procs import PYTHON, helper_path, spawn, stop
from lab.kmsg import kmsg_raw_since, kmsg_since, last_seq
from lab.memcg import _make_cgroup, _remove_cgroup
from lab.privileges import memory_cgroup_root
from lab.scan import oom_events_for, run_scan

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]

STORM = 24
"""Kills made inside one 5 s window: well past the kernel's 10 reports."""
KILLED = re.compile(r"Killed process (\d+) \(")


def _hogs(procs_file: str, count: int) -> list[subprocess.Popen[str]]:
    """Processes that each outgrow the cgroup's limit alone, so each is OOM-killed."""
    hog = helper_path("_memhog.py")
    argv = [PYTHON, "-S", hog, "--cgroup-procs", procs_file, "--comm", "kb-storm", "--mb", "96"]
    return [spawn(argv) for _ in range(count)]


def test_a_storm_of_memcg_kills_is_every_kill_with_what_its_line_proves(
    root_kernel: None,
) -> None:
    found = memory_cgroup_root()
    assert found is not None
    root, version = found
    cgdir = _make_cgroup(root, version, f"kernbot-storm-{uuid.uuid4().hex[:10]}", 48 << 20)
    procs_file = f"{cgdir}/cgroup.procs"
    seq = last_seq()
    procs: list[subprocess.Popen[str]] = []
    try:
        procs = _hogs(procs_file, STORM)
        for p in procs:
            p.wait(timeout=60)
        time.sleep(5.5)  # the window reopens: the next report says how many were suppressed
        procs += _hogs(procs_file, 1)
        procs[-1].wait(timeout=60)
        time.sleep(0.5)
    finally:
        for p in procs:
            stop(p)
        _remove_cgroup(cgdir)
    ours = {p.pid for p in procs}
    messages = kmsg_since(seq)
    victims = [int(m[1]) for line in messages if (m := KILLED.search(line)) and int(m[1]) in ours]
    assert len(victims) >= STORM, messages[-40:]
    reported = {
        pid for pid in victims if any(f",pid={pid}," in line for line in messages)
    }  # the `oom-kill:` summary is part of the rate-limited report
    suppressed = [pid for pid in victims if pid not in reported]
    assert suppressed, "the kernel printed every report: no storm reached the rate limit"
    assert any("callbacks suppressed" in line for line in messages), messages[-40:]

    run = run_scan("-", stdin=kmsg_raw_since(seq))
    assert run.returncode == 0, run.explain()
    for pid in victims:
        (event,) = oom_events_for(run, pid)
        assert event["killed"] is True
        assert event["constraint"] == "CONSTRAINT_MEMCG", event
        assert event["global_oom"] is False
        assert event["memcg"] is not None
        assert event["victim"]["anon_rss_kb"] is not None
        assert event["report_suppressed"] is (pid in suppressed), event["lines"]
    human = run_scan("-", stdin=kmsg_raw_since(seq), json_output=False)
    summary = human.stdout.strip().splitlines()[-1]
    count = int(re.search(r"Found (\d+) OOM kill", summary)[1])  # type: ignore[index]
    assert count >= len(victims), summary  # every kill counted (others' kills may add)
