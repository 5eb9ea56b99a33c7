"""One reading of a memory cgroup (or the host) and the short history a fit needs.

Sizes are in kB like every other kernbot event. The history is two flat float arrays (not a
deque of tuples) because the agent keeps one per cgroup with a limit, hundreds on a busy node.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MemSample:
    cgroup: str
    """Path inside the memory hierarchy as OOM reports print it ("/" for the host)."""
    usage_kb: int
    working_set_kb: int
    """usage minus inactive file pages, as the kubelet computes it."""
    limit_kb: int
    high_kb: int | None = None
    psi_some: float | None = None
    psi_full: float | None = None
    version: int | None = None
    """cgroup version (1 or 2); 0 for the host."""


class Series:
    """(time, working set kB) samples of the last `window_s` seconds."""

    __slots__ = ("times", "values", "window_s")

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.times = array("d")
        self.values = array("d")

    def push(self, now: float, value: float) -> None:
        if self.times and now <= self.times[-1]:
            return  # the clock went back or the same sample twice: keep the series ordered
        self.times.append(now)
        self.values.append(value)
        cut = 0
        limit = now - self.window_s
        while cut < len(self.times) and self.times[cut] < limit:
            cut += 1
        if cut:
            del self.times[:cut]
            del self.values[:cut]

    def clear(self) -> None:
        del self.times[:]
        del self.values[:]

    @property
    def span_s(self) -> float:
        return self.times[-1] - self.times[0] if len(self.times) > 1 else 0.0

    def __len__(self) -> int:
        return len(self.times)
