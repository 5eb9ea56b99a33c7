"""A real OOM kill on demand, inside a memory cgroup the lab creates and removes.

The kernel picks the victim, so the lab arranges the outcome the tests want: the victim first
allocates and touches memory and raises its own oom_score_adj to 1000 (raising is allowed here,
lowering is not), then a different process, the trigger, allocates until the cgroup limit is hit.
The trigger is therefore the task that "invoked oom-killer" and the victim is the one "Killed".
Swap is capped too (memsw / swap.max) so it cannot absorb the overrun. Never system-wide: the
limit is small and the cgroup is removed in `finally`.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lab._procs import PYTHON, helper_path, spawn, stop, wait_line
from lab.kmsg import KmsgRecord, KmsgTail, last_seq
from lab.privileges import memory_cgroup_root

_KILLED = re.compile(r"Killed process (\d+) \((.*)\) total-vm:")
_OOM_MEMCG = re.compile(r"oom_memcg=([^,]*),")


def _printed_cgroup(records: list[KmsgRecord], victim_pid: int, name: str) -> str:
    """The path the kernel printed for our cgroup (`oom_memcg=` of the line naming our victim).

    Usually `/<name>`, but it is relative to the hierarchy root, not to a cgroup namespace, so
    inside a container it can be longer; fall back to `/<name>` on kernels without that line.
    """
    for rec in records:
        if rec.message.startswith("oom-kill:") and f",pid={victim_pid}," in rec.message:
            m = _OOM_MEMCG.search(rec.message)
            if m and m.group(1).endswith("/" + name):
                return m.group(1)
    return "/" + name


def kernel_comm(name: str) -> str:
    """The comm the kernel keeps for `name`: at most 15 bytes."""
    return name.encode("utf-8", "surrogateescape")[:15].decode("utf-8", "replace")


@dataclass
class OomResult:
    """What the kernel really did, as the tests need to select it among other people's OOMs."""

    cgroup: str
    """The cgroup path as the kernel prints it (`oom_memcg=`), e.g. `/kernbot-test-1a2b3c4d`."""
    cgroup_dir: str
    """Where it lived in the filesystem (removed by the time you get this)."""
    cgroup_version: int
    trigger_pid: int
    trigger_comm: str
    victim_pid: int
    victim_comm: str
    other_pids: list[int]
    """Bystanders we started in the same cgroup (they appear in the kernel's task table)."""
    limit_kb: int
    victim_oom_score_adj: int
    started_mono_usec: int
    """CLOCK_MONOTONIC at start, in µs (the clock /dev/kmsg timestamps use, near enough)."""
    seq_before: int
    """Every record of this OOM has a /dev/kmsg sequence number greater than this."""
    kill_line: str
    """The kernel's `... Killed process <victim_pid> (...) ...` message."""
    records: list[KmsgRecord] = field(default_factory=list)
    """All /dev/kmsg records seen from start to the kill line (may include other tests' noise)."""

    def is_its_kill(self, event: Mapping[str, Any]) -> bool:
        """Whether `event` (event JSON) is this kill: its victim pid *and* its cgroup.

        A pid alone is not enough: pids are reused, and the journal, kern.log or /dev/kmsg
        still hold kills of earlier runs (a CI machine's journal, an earlier test) whose
        victim had the same pid.
        """
        memcg = event.get("memcg") or {}
        return bool(
            event.get("kind") == "oom_kill"
            and (event.get("victim") or {}).get("pid") == self.victim_pid
            and memcg.get("oom_path") == self.cgroup
        )


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _make_cgroup(root: str, version: int, name: str, limit_bytes: int) -> str:
    if version == 2:
        with open(os.path.join(root, "cgroup.subtree_control")) as f:
            if "memory" not in f.read().split():
                _write(os.path.join(root, "cgroup.subtree_control"), "+memory")
    path = os.path.join(root, name)
    os.mkdir(path)
    if version == 1:
        _write(os.path.join(path, "memory.limit_in_bytes"), str(limit_bytes))
        memsw = os.path.join(path, "memory.memsw.limit_in_bytes")
        if os.path.exists(memsw):
            _write(memsw, str(limit_bytes))
    else:
        _write(os.path.join(path, "memory.max"), str(limit_bytes))
        swap = os.path.join(path, "memory.swap.max")
        if os.path.exists(swap):
            _write(swap, "0")
    return path


def _remove_cgroup(path: str, timeout: float = 10.0) -> None:
    """rmdir, retrying while killed tasks are still leaving it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


OOM_REPORT_RATELIMIT_S = 5.0
"""mm/oom_kill.c prints the report (header, memory state, task table) under `oom_rs`, a
DEFAULT_RATELIMIT_INTERVAL (5 s) / burst 10 ratelimit; a kill past the burst logs only its kill
line and, later, `oom_kill_process: N callbacks suppressed`."""


def memcg_oom(
    *,
    victim_comm: str = "kb-victim",
    trigger_comm: str = "kb-trigger",
    bystander_comm: str | None = None,
    limit_mb: int = 64,
    timeout: float = 20.0,
    attempts: int = 3,
) -> OomResult:
    """Make the kernel OOM-kill a victim in a fresh memory cgroup; return what it logged.

    A whole report is what the tests read, so a kill whose report the kernel's ratelimit
    suppressed (a burst of kills by earlier tests) is repeated after the ratelimit window.
    Raises RuntimeError when the kernel did not kill the victim (with the records seen).
    """
    for attempt in range(attempts):
        result = _memcg_oom_once(
            victim_comm=victim_comm,
            trigger_comm=trigger_comm,
            bystander_comm=bystander_comm,
            limit_mb=limit_mb,
            timeout=timeout,
        )
        header = f"{result.trigger_comm} invoked oom-killer: "
        if any(header in r.message for r in result.records) or attempt == attempts - 1:
            return result
        time.sleep(OOM_REPORT_RATELIMIT_S + 0.5)
    raise AssertionError("unreachable")


def _memcg_oom_once(
    *,
    victim_comm: str,
    trigger_comm: str,
    bystander_comm: str | None,
    limit_mb: int,
    timeout: float,
) -> OomResult:
    found = memory_cgroup_root()
    if found is None:
        raise RuntimeError("no memory cgroup hierarchy (see lab.privileges.require_root_kernel)")
    root, version = found
    name = f"kernbot-test-{uuid.uuid4().hex[:12]}"
    limit_bytes = limit_mb * 1024 * 1024
    victim_mb = limit_mb // 2
    trigger_mb = limit_mb * 3 // 4
    started = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    hog = helper_path("_memhog.py")
    procs: list[subprocess.Popen[str]] = []
    tail = KmsgTail()
    cgdir = _make_cgroup(root, version, name, limit_bytes)
    procs_file = os.path.join(cgdir, "cgroup.procs")
    try:
        seq_before = last_seq()
        victim = spawn(
            [PYTHON, "-S", hog, "--cgroup-procs", procs_file, "--comm", victim_comm,
             "--mb", str(victim_mb), "--adj", "1000"]
        )  # fmt: skip
        procs.append(victim)
        wait_line(victim, "ready", timeout)
        others: list[int] = []
        if bystander_comm is not None:
            by = spawn(
                [PYTHON, "-S", hog, "--cgroup-procs", procs_file, "--comm", bystander_comm,
                 "--mb", "2"]
            )  # fmt: skip
            procs.append(by)
            wait_line(by, "ready", timeout)
            others.append(by.pid)
        trigger = spawn(
            [PYTHON, "-S", hog, "--cgroup-procs", procs_file, "--comm", trigger_comm,
             "--mb", str(trigger_mb)]
        )  # fmt: skip
        procs.append(trigger)
        prefix = f"Killed process {victim.pid} ("
        kill = tail.wait_for(lambda r: prefix in r.message, timeout=timeout)
        if kill is None:
            raise RuntimeError(
                f"no `{prefix}` record within {timeout}s; records seen: "
                + "\n".join(tail.messages()[-50:])
            )
        victim.wait(timeout)
        m = _KILLED.search(kill.message)
        return OomResult(
            cgroup=_printed_cgroup(tail.records, victim.pid, name),
            cgroup_dir=cgdir,
            cgroup_version=version,
            trigger_pid=trigger.pid,
            trigger_comm=kernel_comm(trigger_comm),
            victim_pid=victim.pid,
            victim_comm=m.group(2) if m else kernel_comm(victim_comm),
            other_pids=others,
            limit_kb=limit_bytes // 1024,
            victim_oom_score_adj=1000,
            started_mono_usec=started,
            seq_before=seq_before,
            kill_line=kill.message,
            records=list(tail.records),
        )
    finally:
        for p in procs:
            stop(p)
        tail.close()
        _remove_cgroup(cgdir)
