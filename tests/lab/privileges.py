"""Skip, with the reason spelled out, when the kernel lab cannot run here.

The lab makes the real kernel OOM-kill processes and log SYN floods, which needs root, a readable
/dev/kmsg and a writable memory cgroup hierarchy. A test that silently passed without those would
prove nothing, so each gap becomes a pytest skip that says what is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

CGROUP_V1_MEMORY = "/sys/fs/cgroup/memory"
CGROUP_V2_CANDIDATES = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")


def memory_cgroup_root() -> tuple[str, int] | None:
    """Where the lab can create memory cgroups: (directory, cgroup version), or None.

    v1 is preferred when its memory controller is mounted (this machine); otherwise a v2 mount
    whose root offers the `memory` controller to children.
    """
    if os.path.exists(os.path.join(CGROUP_V1_MEMORY, "memory.limit_in_bytes")) or os.path.exists(
        os.path.join(CGROUP_V1_MEMORY, "tasks")
    ):
        return CGROUP_V1_MEMORY, 1
    for root in CGROUP_V2_CANDIDATES:
        try:
            with open(os.path.join(root, "cgroup.controllers")) as f:
                if "memory" in f.read().split():
                    return root, 2
        except OSError:
            continue
    return None


def why_not_root_kernel() -> str | None:
    """The reason the kernel lab cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root (real OOM kills in a memory cgroup, /dev/kmsg)"
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError as e:
        return f"/dev/kmsg is not readable: {e}"
    found = memory_cgroup_root()
    if found is None:
        return "no memory cgroup controller (v1 /sys/fs/cgroup/memory or v2 with memory)"
    if not os.access(found[0], os.W_OK):
        return f"memory cgroup root {found[0]} is not writable"
    return None


def require_root_kernel() -> None:
    """pytest.skip with a clear reason unless root, /dev/kmsg and a memory cgroup are usable."""
    reason = why_not_root_kernel()
    if reason:
        pytest.skip(reason)


def require_netns() -> None:
    """Skip unless network namespaces and veth pairs can be created (root + iproute2)."""
    require_root_kernel()
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2 `ip` for network namespaces")
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"`ip netns` does not work here: {probe.stderr.strip()}")


def require_program(name: str, why: str) -> str:
    """Path of program `name`, or a skip that says what it was needed for."""
    path = shutil.which(name) or next(
        (p for p in (f"/lib/systemd/{name}", f"/usr/lib/systemd/{name}") if os.access(p, os.X_OK)),
        None,
    )
    if path is None:
        pytest.skip(f"needs `{name}` ({why})")
    return path
