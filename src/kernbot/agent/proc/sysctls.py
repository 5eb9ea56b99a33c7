"""The net sysctls that decide what the kernel does with a SYN flood.

`tcp_syncookies` (0 drop, 1 cookies when the queue overflows, 2 always), `tcp_max_syn_backlog`
(SYN queue size), `somaxconn` (cap on listen() backlog) and `tcp_synack_retries` (how long a
half-open connection holds a slot). /proc/sys/net shows the values of the READER's network
namespace (there is no /proc/PID/sys), so another netns is read from a thread moved into it.
"""

from __future__ import annotations

from pathlib import Path

NET_SYSCTLS = (
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_max_syn_backlog",
    "net.core.somaxconn",
    "net.ipv4.tcp_synack_retries",
)
VM_SYSCTLS = ("vm.overcommit_memory", "vm.panic_on_oom", "vm.oom_kill_allocating_task")
"""Read for OOM kills: they decide whether and whom the kernel kills."""


def read_sysctls(base: Path, names: tuple[str, ...] = NET_SYSCTLS) -> dict[str, int]:
    """{"net.core.somaxconn": 4096, ...} read under the proc root `base` (`sys/net/core/somaxconn`);
    keys are the names `sysctl` prints. Missing or unreadable ones are left out."""
    out: dict[str, int] = {}
    for name in names:
        try:
            out[name] = int((base / "sys" / name.replace(".", "/")).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return out
