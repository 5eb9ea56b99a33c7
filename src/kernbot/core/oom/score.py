"""The kernel's oom_badness() and /proc/PID/oom_score, per kernel era, from report numbers.

An SRE's first question after a kill is "why this process?": the answer is its badness score,
which the kernel prints only on old kernels (`score N`). Recomputing it from the task table lets
kernbot show it for every kernel, and comparing with a printed score checks the parse. Formulas
(PROVENANCE.md section 4, mm/oom_kill.c):

* `5.9+`: points = rss + swapents + pgtables_pages + adj * (totalpages // 1000);
  /proc oom_score = (1000 + points * 1000 / totalpages) * 2 / 3, 0..2000, 0 when adj = -1000.
* `2.6.36-5.8` from 3.8 on: same points, then max(points, 1); score = points * 1000 / totalpages.
  3.14-4.16 took 3 % off the points of CAP_SYS_ADMIN tasks. The report does not say who holds
  the capability; the assembler passes `root_bonus=True` for uid 0 in GLOBAL OOMs of that era
  only (containers run as uid 0 without CAP_SYS_ADMIN: the 4.15 memcg kills print `score 1955`
  and `1027` with no bonus, the ARM 4.0 global one matches only with it).
* `2.6.36-5.8` before 3.8 (header with both oom_adj and oom_score_adj): points normalised to
  1000 first, root -30, + adj, clamped to 1..1000.
* `pre-2.6.36`: the old heuristic needs CPU time and children: not computable, None.

C integer division truncates toward zero; so does `_cdiv`.
"""

from __future__ import annotations

ERA_NEW = "5.9+"
ERA_OLD = "2.6.36-5.8"
ERA_ANCIENT = "pre-2.6.36"
PAGE_KB = 4


def _cdiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def oom_score(
    *,
    era: str | None,
    rss_kb: int,
    swapents_kb: int = 0,
    pgtables_kb: int = 0,
    oom_score_adj: int = 0,
    totalpages: int | None,
    root_bonus: bool = False,
    normalised_3x: bool = False,
) -> int | None:
    """The score /proc/PID/oom_score showed (and old kernels printed) for this task, or None.

    `totalpages` is RAM + swap pages for a global OOM, the memcg limit (+ swap) for a memcg OOM
    (the scale the kernel used to choose the victim). `normalised_3x` selects the 2.6.36-3.7 form.
    """
    if totalpages is None or totalpages <= 0 or era not in (ERA_NEW, ERA_OLD):
        return None
    adj = max(-1000, min(1000, oom_score_adj))
    if adj == -1000:
        return 0
    if era == ERA_OLD and normalised_3x:
        points = rss_kb // PAGE_KB + swapents_kb // PAGE_KB + pgtables_kb // PAGE_KB
        score = _cdiv(points * 1000, totalpages)
        if root_bonus:
            score -= 30
        score += adj
        return 1 if score <= 0 else min(score, 1000)
    rss, swap, pgt = rss_kb // PAGE_KB, swapents_kb // PAGE_KB, pgtables_kb // PAGE_KB
    points = rss + swap + pgt
    if era == ERA_OLD and root_bonus:
        points -= points * 3 // 100
    points += adj * (totalpages // 1000)
    if era == ERA_NEW:
        return max(0, _cdiv((1000 + _cdiv(points * 1000, totalpages)) * 2, 3))
    return _cdiv(max(points, 1) * 1000, totalpages)
