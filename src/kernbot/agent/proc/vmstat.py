"""/proc/vmstat: the kernel's own count of OOM kills since boot (`oom_kill`, 4.13+).

Comparing it with the kills seen in the log tells the agent when log lines were lost.
"""

from __future__ import annotations


def parse_vmstat(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        try:
            out[parts[0]] = int(parts[1])
        except ValueError:
            continue
    return out


def oom_kill_count(text: str) -> int | None:
    """The `oom_kill` counter, or None on kernels older than 4.13 that do not have it."""
    return parse_vmstat(text).get("oom_kill")
