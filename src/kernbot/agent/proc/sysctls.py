"""The net sysctls that decide what the kernel does with a SYN flood.

`tcp_syncookies` (0 drop, 1 cookies when the queue overflows, 2 always), `tcp_max_syn_backlog`
(SYN queue size), `somaxconn` (cap on listen() backlog) and `tcp_synack_retries` (how long a
half-open connection holds a slot). /proc/sys/net shows the values of the READER's network
namespace (there is no /proc/PID/sys), so another netns is read from a thread moved into it.
"""

from __future__ import annotations

from pathlib import Path

NET_SYSCTLS: dict[str, str] = {
    "tcp_syncookies": "sys/net/ipv4/tcp_syncookies",
    "tcp_max_syn_backlog": "sys/net/ipv4/tcp_max_syn_backlog",
    "somaxconn": "sys/net/core/somaxconn",
    "tcp_synack_retries": "sys/net/ipv4/tcp_synack_retries",
}


def read_net_sysctls(base: Path) -> dict[str, int]:
    """Values found under the proc root `base`; missing or unreadable ones are left out."""
    out: dict[str, int] = {}
    for name, rel in NET_SYSCTLS.items():
        try:
            out[name] = int((base / rel).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return out
