"""Memory cgroups with a limit, sampled as cheaply as the decision allows.

Layouts: cgroup v2 (`cgroup.controllers` at the root lists `memory`), cgroup v1 (the `memory`
hierarchy under `<root>/memory`), and hybrid (v1 memory beside a v2 `unified` mount) reads as v1.
Paths are reported relative to the memory hierarchy's root, as OOM reports print them.

Cost: on each sample every cgroup costs one read (usage). The limit, memory.high, inactive file
pages (for the working set) and PSI are re-read every `refresh_s`, or on every sample while the
risk tracker calls the cgroup hot (near a threshold or in an episode). The tree is walked again
every `discover_s` to find new and removed cgroups.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kernbot.agent.cgroups.files import parse_flat_keyed, parse_pressure, read_int, read_small
from kernbot.core.risk import MemSample

KB = 1024


@dataclass(slots=True)
class _Cgroup:
    rel: str
    base: str
    """Directory path with a trailing slash."""
    limit_kb: int
    high_kb: int | None = None
    inactive_kb: int = 0
    psi_some: float | None = None
    psi_full: float | None = None
    refreshed: float = float("-inf")


def detect(root: Path) -> tuple[int, Path] | None:
    """(version, memory hierarchy root) under a cgroup mount root, or None without memory."""
    controllers = read_small(str(root / "cgroup.controllers"))
    if controllers is not None and b"memory" in controllers.split():
        return 2, root
    v1 = root / "memory"
    if (v1 / "memory.usage_in_bytes").exists():
        return 1, v1
    return None


class CgroupReader:
    def __init__(self, root: Path, *, refresh_s: float = 60.0) -> None:
        self.root = root
        self.refresh_s = refresh_s
        found = detect(root)
        self.version: int | None = found[0] if found else None
        self.memory_root: Path | None = found[1] if found else None
        self._cgroups: dict[str, _Cgroup] = {}
        v2 = self.version == 2
        self._usage = "memory.current" if v2 else "memory.usage_in_bytes"
        self._limit = "memory.max" if v2 else "memory.limit_in_bytes"
        self._inactive = "inactive_file" if v2 else "total_inactive_file"

    @property
    def cgroups(self) -> list[str]:
        return list(self._cgroups)

    def discover(self, host_total_kb: int | None = None) -> set[str]:
        """Walk the hierarchy; keep cgroups whose limit is below the host's memory (a larger
        limit never binds: the host runs out first). Returns the paths now tracked."""
        if self.memory_root is None:
            return set()
        found: dict[str, _Cgroup] = {}
        top = str(self.memory_root)
        stack = [top]
        while stack:
            d = stack.pop()
            try:
                with os.scandir(d) as it:
                    subdirs = [e.path for e in it if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue
            stack.extend(subdirs)
            if d == top:
                continue  # the root cgroup has no limit of its own: that is the host's risk
            limit = read_int(d + "/" + self._limit)
            if limit is None or (host_total_kb is not None and limit // KB >= host_total_kb):
                continue
            rel = d[len(top) :] or "/"
            known = self._cgroups.get(rel)
            if known is not None:
                known.limit_kb = limit // KB
                found[rel] = known
            else:
                found[rel] = _Cgroup(rel=rel, base=d + "/", limit_kb=limit // KB)
        self._cgroups = found
        return set(found)

    def sample(self, now: float, hot: Callable[[str], bool]) -> list[MemSample]:
        """One sample of every tracked cgroup (those that vanished are skipped)."""
        out: list[MemSample] = []
        for cg in list(self._cgroups.values()):
            usage = read_int(cg.base + self._usage)
            if usage is None:
                continue
            stale = now - cg.refreshed >= self.refresh_s or hot(cg.rel)
            if stale and not self._refresh(cg, now):
                continue
            usage_kb = usage // KB
            out.append(
                MemSample(
                    cgroup=cg.rel,
                    usage_kb=usage_kb,
                    working_set_kb=max(0, usage_kb - cg.inactive_kb),
                    limit_kb=cg.limit_kb,
                    high_kb=cg.high_kb,
                    psi_some=cg.psi_some,
                    psi_full=cg.psi_full,
                    version=self.version,
                )
            )
        return out

    def _refresh(self, cg: _Cgroup, now: float) -> bool:
        limit = read_int(cg.base + self._limit)
        if limit is None:
            del self._cgroups[cg.rel]  # the limit was lifted (or the cgroup went away)
            return False
        cg.limit_kb = limit // KB
        stat = read_small(cg.base + "memory.stat", 8192)
        if stat is not None:
            cg.inactive_kb = parse_flat_keyed(stat).get(self._inactive, 0) // KB
        if self.version == 2:
            high = read_int(cg.base + "memory.high")
            cg.high_kb = high // KB if high is not None else None
            pressure = read_small(cg.base + "memory.pressure")
            if pressure is not None:
                cg.psi_some, cg.psi_full = parse_pressure(pressure)
        cg.refreshed = now
        return True

    def memory_events(self, rel: str) -> dict[str, int]:
        """v2 memory.events (high, max, oom, oom_kill); v1 failcnt and memory.oom_control
        (under_oom, oom_kill). Read only when an episode event goes out."""
        cg = self._cgroups.get(rel)
        if cg is None:
            return {}
        if self.version == 2:
            raw = read_small(cg.base + "memory.events")
            return parse_flat_keyed(raw) if raw is not None else {}
        out: dict[str, int] = {}
        failcnt = read_int(cg.base + "memory.failcnt")
        if failcnt is not None:
            out["failcnt"] = failcnt
        raw = read_small(cg.base + "memory.oom_control")
        if raw is not None:
            ctl = parse_flat_keyed(raw)
            out.update({k: v for k, v in ctl.items() if k in ("under_oom", "oom_kill")})
        return out

    def pids(self, rel: str, limit: int = 4096) -> list[int]:
        """Processes in this cgroup and its descendants (a pod's are in its containers')."""
        if self.memory_root is None:
            return []
        top = str(self.memory_root) + (rel.rstrip("/") if rel != "/" else "")
        out: list[int] = []
        for d, _dirs, _files in os.walk(top):
            raw = read_small(d + "/cgroup.procs", 1 << 20)
            if raw is not None:
                out += [int(p) for p in raw.split() if p.isdigit()]
            if len(out) >= limit:
                break
        return out[:limit]
