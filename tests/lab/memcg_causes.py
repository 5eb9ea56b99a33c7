"""Real memory-cgroup OOM kills whose cause the test controls, read back through the detector.

`cause_oom` creates a fresh memory cgroup with a small limit, starts the lab's `_causes.py`
processes in it one step after another (each step a list of processes started together, waited
for `ready` when the step says so), and returns the `oom_kill` event the kernbot core assembles
from the kernel's own /dev/kmsg records for the first kill of one of our processes. The tmpfs
for the shmem case is mounted by `tmpfs_dir` and unmounted afterwards. Never system-wide: the
limit is small and the cgroup is removed in `finally`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from kernbot.core.detector import detect
from kernbot.core.events import OomKillEvent
from kernbot.core.formats.reader import read_lines
from lab._procs import PYTHON, helper_path, spawn, stop, wait_line
from lab.kmsg import KmsgTail, kmsg_raw_since, last_seq
from lab.memcg import _make_cgroup, _remove_cgroup
from lab.privileges import memory_cgroup_root


@dataclass
class Proc:
    comm: str
    args: list[str]
    wait_ready: bool = True


@dataclass
class CauseOom:
    cgroup_version: int
    limit_kb: int
    pids: dict[str, list[int]]
    """comm -> the pids we started with it."""
    event: OomKillEvent
    raw: str = field(repr=False)
    """The /dev/kmsg records from before the first process to the kill, as read."""


@contextlib.contextmanager
def tmpfs_dir(size_mb: int = 256) -> Iterator[str]:
    """A private tmpfs mount (shmem pages, charged to whoever writes them)."""
    path = tempfile.mkdtemp(prefix="kernbot-tmpfs-")
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "kernbot-lab", path], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=False)
        with contextlib.suppress(OSError):
            os.rmdir(path)


IN_GUEST = os.environ.get("KERNBOT_IN_VMGUEST") == "1"
"""Set by the command run through tests/lab/vmguest.py: a throwaway VM, where a system-wide
OOM is allowed (never on the host)."""


def _child_cgroup(root: str, files: dict[str, str]) -> str:
    """A cgroup v2 child of `root` without a memory limit, `files` written into it (each file's
    controller enabled at the root first), e.g. {"cpuset.mems": "1"}."""
    control = os.path.join(root, "cgroup.subtree_control")
    for controller in sorted({name.split(".")[0] for name in files}):
        with open(control, "w") as f:
            f.write(f"+{controller}")
    path = os.path.join(root, f"kernbot-cause-{uuid.uuid4().hex[:12]}")
    os.mkdir(path)
    for name, value in files.items():
        with open(os.path.join(path, name), "w") as f:
            f.write(value)
    return path


def _where(
    limit_mb: int | None, cgroup_files: dict[str, str] | None
) -> tuple[int, str | None, str]:
    """(cgroup version, the cgroup made for the run or None, its cgroup.procs)."""
    found = memory_cgroup_root()
    if found is None:
        raise RuntimeError("no memory cgroup hierarchy (see lab.privileges.require_root_kernel)")
    root, version = found
    if cgroup_files is not None and (limit_mb is not None or version != 2):
        raise RuntimeError("cgroup_files: a cgroup v2 child without a limit, in the guest")
    if limit_mb is None:
        if not IN_GUEST:
            raise RuntimeError("a system-wide OOM only inside the vmguest, never on the host")
        cgdir = None if cgroup_files is None else _child_cgroup(root, cgroup_files)
        return version, cgdir, os.path.join(cgdir or root, "cgroup.procs")
    name = f"kernbot-cause-{uuid.uuid4().hex[:12]}"
    cgdir = _make_cgroup(root, version, name, limit_mb * 1024 * 1024)
    return version, cgdir, os.path.join(cgdir, "cgroup.procs")


def cause_oom(
    steps: list[list[Proc]],
    *,
    limit_mb: int | None,
    timeout: float = 60.0,
    cgroup_files: dict[str, str] | None = None,
) -> CauseOom:
    """Run `steps` in a fresh cgroup until the kernel kills one of them; return its event.

    `limit_mb=None` runs them in the root cgroup for a system-wide OOM: only inside the guest;
    with `cgroup_files` (guest only, cgroup v2), in a child cgroup without a memory limit that
    has those files written (a cpuset confining the memory to some nodes, say).
    """
    version, cgdir, procs_file = _where(limit_mb, cgroup_files)
    helper = helper_path("_causes.py")
    started: list[subprocess.Popen[str]] = []
    pids: dict[str, list[int]] = {}
    tail = KmsgTail()
    seq_before = last_seq()
    try:
        for step in steps:
            batch = []
            for p in step:
                argv = [PYTHON, "-S", helper, "--cgroup-procs", procs_file, "--comm", p.comm]
                proc = spawn(argv + p.args)
                started.append(proc)
                pids.setdefault(p.comm[:15], []).append(proc.pid)
                batch.append((p, proc))
            for p, proc in batch:
                if p.wait_ready:
                    wait_line(proc, "ready", timeout)
        ours = {pid for group in pids.values() for pid in group}
        kill = tail.wait_for(
            lambda r: any(f"Killed process {pid} (" in r.message for pid in ours),
            timeout=timeout,
        )
        if kill is None:
            seen = "\n".join(tail.messages()[-40:])
            raise RuntimeError(f"no kill of our processes; seen:\n{seen}")
        time.sleep(0.5)  # the reaper line and stragglers
        raw = kmsg_raw_since(seq_before)
        events = [
            e
            for e in detect(read_lines(raw.splitlines()))
            if isinstance(e, OomKillEvent) and e.victim.pid in ours
        ]
        if not events:
            raise RuntimeError("the detector found no event for our kill:\n" + raw[-4000:])
        save = os.environ.get("KERNBOT_LAB_SAVE_RAW")
        if save:  # keep the kernel's text (vmguest: a dir under /tmp/vmout comes back)
            os.makedirs(save, exist_ok=True)
            name = f"{events[0].victim.comm}-{events[0].victim.pid}.kmsg"
            with open(os.path.join(save, name), "w") as f:
                f.write(raw)
        return CauseOom(version, (limit_mb or 0) * 1024, pids, events[0], raw)
    finally:
        for proc in started:
            stop(proc)
        tail.close()
        if cgdir is not None:
            _remove_cgroup(cgdir)
