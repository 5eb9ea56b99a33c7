"""Across kills: a cgroup or pod killed again and again at the same usage grows to its limit
on a schedule — a leak, or a limit too low for the steady state.

Pure: the caller (the agent's history, the bot's store) hands in the kills it knows with their
times; this groups them by what owned the limit and measures the interval. A Kubernetes
container's cgroup path changes with every restart (the container id is in it), so pods are
keyed by pod UID, other cgroups by the limit's path.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from math import isnan
from operator import sub
from statistics import median

from kernbot.core.cgroup_identity import identify
from kernbot.core.context import Recurrence
from kernbot.core.events import OomKillEvent
from kernbot.core.units import size

MIN_KILLS = 3
"""Two kills can be chance; the third at the same level is a pattern."""
SAME_LEVEL = 0.05
"""Usages within 5% of each other count as 'the same usage' (each kill stops at the limit)."""
WINDOW_S = 7 * 86400.0
"""How far back the pattern is looked for."""


@dataclass(frozen=True, slots=True)
class Kill:
    at: float
    """Epoch seconds."""
    key: str
    usage_kb: int | None
    limit_kb: int | None


def kill_key(ev: OomKillEvent) -> str | None:
    """What owned the limit: `pod:<uid>`, `cgroup:<path>`, None (a global OOM)."""
    m = ev.memcg
    k8s = ev.kubernetes
    if k8s is None and m is not None and (m.task_path or m.oom_path):
        k8s = identify(m.task_path or m.oom_path or "")
    if k8s is not None and k8s.pod_uid:
        # The container name is not known yet when the agent first sees a kill; the usage level
        # keeps two containers of one pod apart.
        return f"pod:{k8s.pod_uid}"
    if m is not None and not ev.global_oom and (m.oom_path or m.task_path):
        return f"cgroup:{m.oom_path or m.task_path}"
    return None


def as_kill(ev: OomKillEvent, at: float) -> Kill | None:
    key = kill_key(ev)
    if key is None:
        return None
    m = ev.memcg
    return Kill(at, key, m.usage_kb if m else None, m.limit_kb if m else None)


def _levels_match(
    usage: int | None, limit: int | None, k_usage: int | None, k_limit: int | None
) -> bool:
    """Whether a kill at `usage`/`limit` and one at `k_usage`/`k_limit` are at the same level:
    usages within `SAME_LEVEL` of the larger, else (a usage unknown) the same known limit."""
    if usage is None or k_usage is None:
        return limit is not None and limit == k_limit
    high = usage if usage > k_usage else k_usage
    return high == 0 or abs(usage - k_usage) <= high * SAME_LEVEL


def _same_level(a: Kill, b: Kill) -> bool:
    return _levels_match(a.usage_kb, a.limit_kb, b.usage_kb, b.limit_kb)


def _every(seconds: float) -> str:
    if seconds < 90:
        return f"~{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"~{seconds / 60:.0f} min"
    return f"~{seconds / 3600:.1f} h"


def recurrence(current: Kill, known: list[Kill], *, more: bool = False) -> Recurrence | None:
    """The pattern `current` repeats, or None. `more`: `known` is only the newest kills of this
    cgroup (older ones were forgotten), so the count is a lower bound and is said so."""
    # One kill per time, `current` last so it wins a tie. (The agent measures its OOM loops
    # with `KillTimes` instead: this walks every kill.)
    key, first, last = current.key, current.at - WINDOW_S, current.at
    usage, limit = current.usage_kb, current.limit_kb
    by_at: dict[float, Kill] = {}
    for k in known:
        if k.key != key or not first <= k.at <= last:
            continue
        if _levels_match(usage, limit, k.usage_kb, k.limit_kb):
            by_at[k.at] = k
    if _same_level(current, current):
        by_at[current.at] = current
    return _pattern(current, [by_at[at].at for at in sorted(by_at)], more)


class KillTimes:
    """The times of one cgroup's or pod's remembered kills, by level (usage and limit), kept as
    kills come and go, so `recurrence_of` equals `recurrence` over those kills without a walk
    over each of them.

    The agent asks this for every kill of an OOM loop over the newest 100 kills of its cgroup
    (issue 11): the level test is made once per distinct (usage, limit) instead of once per kill
    (a loop's kills are at a few levels), and the window is two bisections of the sorted times.
    `recurrence` keeps one kill per time and measures only times, so a time is counted here
    while any kill holds it. A time that is NaN is never inside a window and is not kept. Times
    are assumed not to be -0.0 (the agent's are epoch seconds from the clock or an event's time):
    `recurrence` takes the sign of zero from whichever kill comes last in its list.
    """

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        self._levels: dict[tuple[int | None, int | None], dict[float, int]] = {}
        """(usage_kb, limit_kb) -> time -> how many remembered kills at that level have it."""

    def add(self, kill: Kill) -> None:
        at = kill.at
        if isnan(at):
            return
        times = self._levels.get((kill.usage_kb, kill.limit_kb))
        if times is None:
            self._levels[(kill.usage_kb, kill.limit_kb)] = {at: 1}
        else:
            times[at] = times.get(at, 0) + 1

    def discard(self, kill: Kill) -> None:
        """Forget one kill given to `add` (nothing when it was not)."""
        level = (kill.usage_kb, kill.limit_kb)
        times = self._levels.get(level)
        if times is None or kill.at not in times:
            return
        if times[kill.at] > 1:
            times[kill.at] -= 1
        else:
            del times[kill.at]
            if not times:
                del self._levels[level]

    def recurrence_of(self, current: Kill, *, more: bool = False) -> Recurrence | None:
        """`recurrence(current, kills, more=more)` where `kills` are the kills added and not
        discarded (each of them of `current.key`)."""
        at = current.at
        if isnan(at):  # no kill is in its window, and itself alone is no pattern
            return None
        usage, limit = current.usage_kb, current.limit_kb
        picked: list[dict[float, int]] = []
        for (k_usage, k_limit), times in self._levels.items():
            if _levels_match(usage, limit, k_usage, k_limit):
                picked.append(times)
        own = _same_level(current, current)
        if len(picked) == 1 and (not own or at in picked[0]):
            ordered = sorted(picked[0])
        else:
            union: set[float] = set()
            for times in picked:
                union.update(times)
            if own:
                union.add(at)
            ordered = sorted(union)
        lo = bisect_left(ordered, at - WINDOW_S)
        hi = bisect_right(ordered, at)
        if hi - lo < MIN_KILLS:
            return None
        return _pattern(current, ordered[lo:hi], more)


def _pattern(current: Kill, times: list[float], more: bool) -> Recurrence | None:
    """The recurrence of `current` among kills at these times (sorted, each once)."""
    if len(times) < MIN_KILLS:
        return None
    # each later than the one before: every gap is positive (`b > a` of the first version)
    interval = median(map(sub, times[1:], times[:-1]))
    level = f" at {size(current.usage_kb)}" if current.usage_kb else ""
    return Recurrence(
        kills=len(times),
        interval_s=round(interval, 1),
        usage_kb=current.usage_kb,
        limit_kb=current.limit_kb,
        since=times[0],
        key=current.key,
        text=f"grows to its limit every {_every(interval)} "
        f"({len(times)}{'+' if more else ''} kills{level}): "
        "a leak, or a limit too low for its steady state",
    )
