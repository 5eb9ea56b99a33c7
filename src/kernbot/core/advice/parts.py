"""Small pieces every advice rule uses: shell quoting, sizes, lenient numbers from context.

Commands are meant to be copy-pasted, so every value that came from kernel text (a comm, a
cgroup path, a unit name) goes through `q`: a process may be named `$(reboot)`.
"""

from __future__ import annotations

import shlex

from kernbot.core.events import OomKillEvent

MIB = 1024


def q(value: object) -> str:
    """`value` as one inert shell word."""
    return shlex.quote(str(value))


def mib(kb: int) -> str:
    """kB as a round MiB figure for prose."""
    return f"{kb / MIB:,.0f} MiB" if kb >= MIB else f"{kb} kB"


def raised_limit_mib(limit_kb: int) -> int:
    """1.5x the old limit, rounded up to a multiple of 64 MiB (at least 64 MiB more)."""
    target = limit_kb * 3 // 2
    step = 64 * MIB
    return max(-(-target // step) * step, limit_kb + step) // MIB


def victim_name(ev: OomKillEvent) -> str:
    """`comm (pid N)` for prose, with only what the report printed."""
    v = ev.victim
    if v.comm is not None and v.pid is not None:
        return f"{v.comm} (pid {v.pid})"
    if v.comm is not None:
        return v.comm
    return f"pid {v.pid}" if v.pid is not None else "a process"


def usage_text(ev: OomKillEvent) -> str:
    """` Usage was X of a Y limit.` (leading space), or empty when not printed."""
    m = ev.memcg
    if m is None or m.usage_kb is None:
        return ""
    if m.limit_kb is None:
        return f" Usage was {mib(m.usage_kb)} with no memory limit set on that cgroup."
    return f" Usage was {mib(m.usage_kb)} of a {mib(m.limit_kb)} limit."
