"""Memory cgroups for the OOM-risk tests: a limit (or none) and a process growing at a set rate.

The kernel does the rest: a grower that reaches its cgroup's limit is OOM-killed for real. The
cgroup is created here and removed in `close()` (after its process is stopped by pid). Swap is
capped with the limit (memsw / swap.max) so the growth cannot hide in swap.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

from lab._procs import PYTHON, helper_path, spawn, stop, wait_line
from lab.memcg import _make_cgroup, _remove_cgroup
from lab.privileges import memory_cgroup_root

MIB = 1024 * 1024


class Grower:
    """A cgroup (`name`, printed by the kernel as `/name` at the hierarchy root) and its grower."""

    def __init__(self, *, limit_mib: int | None, rate_mib_s: float, hold_mib: int | None = None):
        found = memory_cgroup_root()
        if found is None:
            raise RuntimeError("no memory cgroup hierarchy")
        root, self.version = found
        self.name = f"kernbot-risk-{uuid.uuid4().hex[:10]}"
        if limit_mib is not None:
            self.dir = _make_cgroup(root, self.version, self.name, limit_mib * MIB)
        elif self.version == 2:
            _make_cgroup(root, 2, self.name, 1 << 50)  # enables memory; "max" below
            self.dir = os.path.join(root, self.name)
            with open(os.path.join(self.dir, "memory.max"), "w") as f:
                f.write("max")
        else:
            self.dir = os.path.join(root, self.name)
            os.mkdir(self.dir)
        self.cgroup = "/" + self.name
        procs = os.path.join(self.dir, "cgroup.procs")
        argv = [PYTHON, "-S", helper_path("_memgrow.py"), "--cgroup-procs", procs,
                "--rate-mib-s", str(rate_mib_s)]  # fmt: skip
        if hold_mib is not None:
            argv += ["--hold-mib", str(hold_mib)]
        self.proc: subprocess.Popen[str] = spawn(argv)
        wait_line(self.proc, "ready", 10.0)
        self.started = time.time()
        self.exited_at: float | None = None

    def poll_exit(self) -> float | None:
        """Wall time the grower was seen dead (killed), or None while it runs."""
        if self.exited_at is None and self.proc.poll() is not None:
            self.exited_at = time.time()
        return self.exited_at

    def close(self) -> None:
        stop(self.proc)
        _remove_cgroup(self.dir)
