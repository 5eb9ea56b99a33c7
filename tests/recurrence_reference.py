"""`recurrence` as first written, the reference the agent's faster bookkeeping is compared with
(tests/test_oom_kill_times.py, tests/agent/test_enrich_same_output.py)."""

from __future__ import annotations

import itertools
from statistics import median

from kernbot.core.context import Recurrence
from kernbot.core.oom.recurrence import WINDOW_S, Kill
from kernbot.core.units import size


def plain_kills(current: Kill, known: list[Kill]) -> list[Kill]:
    """The kills the recurrence counts, as first written: each kill of the key inside the window
    whose usage is within 5 % of the current one's (else the same limit, when either usage is
    unknown), one per time with the current kill last, oldest first."""

    def same_level(a: Kill, b: Kill) -> bool:
        if a.usage_kb is None or b.usage_kb is None:
            return a.limit_kb is not None and a.limit_kb == b.limit_kb
        high = max(a.usage_kb, b.usage_kb)
        return high == 0 or abs(a.usage_kb - b.usage_kb) <= high * 0.05

    picked = {
        k.at: k
        for k in [*known, current]
        if k.key == current.key
        and current.at - WINDOW_S <= k.at <= current.at
        and same_level(k, current)
    }
    return sorted(picked.values(), key=lambda k: k.at)


def plain_recurrence(current: Kill, known: list[Kill], more: bool) -> Recurrence | None:
    """The recurrence as first written: the median of the gaps between `plain_kills`."""
    same = plain_kills(current, known)
    if len(same) < 3:
        return None
    gaps = [b.at - a.at for a, b in itertools.pairwise(same) if b.at > a.at]
    if not gaps:
        return None
    interval = median(gaps)
    if interval < 90:
        every = f"~{interval:.0f} s"
    elif interval < 2 * 3600:
        every = f"~{interval / 60:.0f} min"
    else:
        every = f"~{interval / 3600:.1f} h"
    level = f" at {size(current.usage_kb)}" if current.usage_kb else ""
    return Recurrence(
        kills=len(same),
        interval_s=round(interval, 1),
        usage_kb=current.usage_kb,
        limit_kb=current.limit_kb,
        since=same[0].at,
        key=current.key,
        text=f"grows to its limit every {every} ({len(same)}{'+' if more else ''} kills{level}): "
        "a leak, or a limit too low for its steady state",
    )
