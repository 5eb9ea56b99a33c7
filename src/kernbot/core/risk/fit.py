"""Growth of a working set from a robust line fit, so a garbage collector's sawtooth is no trend.

Theil-Sen: the slope is the median of the slopes between pairs of samples. Only pairs at least
half the covered span apart are used ("long-baseline" pairs): a sawtooth whose period is shorter
than half the window then gives pair slopes that are symmetric around zero (each pair sees at most
one tooth's height over a long time), while a real leak gives every pair the same slope. It also
needs far fewer pairs than the full n²/2, which matters across hundreds of cgroups.

Before the fit the series goes through `peak_envelope`: the highest value of the last `width_s`
seconds at each sample. A collector that climbs and drops back once every `width_s` or faster
has a flat envelope (its peaks do not rise), a leak raises it at the leak's own rate, and a leak
under a sawtooth raises the peaks too. Only samples with a full `width_s` behind them count, so a
young series is not read off its first climb.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from statistics import median


def peak_envelope(
    times: Sequence[float], values: Sequence[float], width_s: float
) -> tuple[list[float], list[float]]:
    """(times, running max over the trailing `width_s`) for samples with a full `width_s` of
    history behind them. O(n) with a monotonic queue of indices."""
    out_t: list[float] = []
    out_v: list[float] = []
    if not times:
        return out_t, out_v
    first = times[0]
    q: deque[int] = deque()
    for i, t in enumerate(times):
        while q and values[q[-1]] <= values[i]:
            q.pop()
        q.append(i)
        while times[q[0]] < t - width_s:
            q.popleft()
        if t - first >= width_s:
            out_t.append(t)
            out_v.append(values[q[0]])
    return out_t, out_v


def robust_slope(times: Sequence[float], values: Sequence[float]) -> float | None:
    """Median slope (value units per second) over pairs at least half the span apart.

    None with fewer than 3 samples or no time span. Samples must be in time order.
    """
    n = len(times)
    if n < 3 or n != len(values):
        return None
    span = times[-1] - times[0]
    if span <= 0:
        return None
    min_sep = span / 2
    slopes: list[float] = []
    j0 = 0
    for i in range(n):
        ti = times[i]
        # pairs (i, j) with times[j] - ti >= min_sep; j0 only moves forward as i does
        j0 = max(j0, i + 1)
        while j0 < n and times[j0] - ti < min_sep:
            j0 += 1
        if j0 >= n:
            break
        vi = values[i]
        for j in range(j0, n):
            slopes.append((values[j] - vi) / (times[j] - ti))
    if not slopes:
        return None
    return float(median(slopes))
