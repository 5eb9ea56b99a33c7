"""The host as one more "cgroup" ("/"): RAM plus swap as the limit, MemAvailable as headroom.

The kernel's global OOM killer runs when neither free RAM nor swap is left, so the host's limit is
MemTotal + SwapTotal and its working set what is not available: (MemTotal - MemAvailable) +
(SwapTotal - SwapFree). PSI comes from /proc/pressure/memory.
"""

from __future__ import annotations

import heapq
import os
from pathlib import Path

from kernbot.agent.cgroups.files import parse_pressure, read_small
from kernbot.agent.proc.meminfo import parse_meminfo
from kernbot.agent.proc.processes import rss_kb
from kernbot.core.events import TopProcess
from kernbot.core.risk import MemSample


def _meminfo(proc_root: Path) -> dict[str, int]:
    raw = read_small(str(proc_root / "meminfo"), 8192)
    return parse_meminfo(raw.decode("ascii", "replace")) if raw is not None else {}


def host_sample(proc_root: Path) -> MemSample | None:
    mi = _meminfo(proc_root)
    total, avail = mi.get("MemTotal"), mi.get("MemAvailable")
    if not total or avail is None:
        return None
    swap_total, swap_free = mi.get("SwapTotal", 0), mi.get("SwapFree", 0)
    used = (total - avail) + max(0, swap_total - swap_free)
    pressure = read_small(str(proc_root / "pressure" / "memory"))
    some, full = parse_pressure(pressure) if pressure is not None else (None, None)
    return MemSample(
        cgroup="/",
        usage_kb=used,
        working_set_kb=used,
        limit_kb=total + swap_total,
        psi_some=some,
        psi_full=full,
        version=0,
    )


def host_total_kb(proc_root: Path) -> int | None:
    return _meminfo(proc_root).get("MemTotal")


def _rss_and_comm(proc_root: Path, pid: int) -> tuple[int, str] | None:
    raw = read_small(f"{proc_root}/{pid}/status", 8192)
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace")
    name = text[5:].split("\n", 1)[0].strip("\t ") if text.startswith("Name:") else ""
    return rss_kb(text) or 0, name


def top_processes(proc_root: Path, pids: list[int] | None, n: int = 5) -> list[TopProcess]:
    """The `n` largest processes by RSS among `pids` (None: every process on the host)."""
    if pids is None:
        try:
            pids = [int(p) for p in os.listdir(proc_root) if p.isdigit()]
        except OSError:
            return []
    rows: list[tuple[int, int, str]] = []
    for pid in pids:
        got = _rss_and_comm(proc_root, pid)
        if got is not None:
            rows.append((got[0], pid, got[1]))
    return [
        TopProcess(pid=pid, comm=comm, rss_kb=rss)
        for rss, pid, comm in heapq.nlargest(n, rows, key=lambda r: r[0])
    ]
