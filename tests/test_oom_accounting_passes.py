"""The one-pass helpers of the accounting and the diagnosis against plainly written versions of
the same rules, on random task tables (repeated names, equal sizes, missing numbers, adj at
and around -1000, the victim's row absent or repeated): equal results, ties broken the same."""

from __future__ import annotations

import random

from kernbot.core.events import OomKillEvent, Task, Victim
from kernbot.core.oom.accounting import Accounting, ProgramGroup, _account_tasks
from kernbot.core.oom.diagnosis import _adj_forced


def _groups_plainly(tasks: list[Task]) -> tuple[int, list[ProgramGroup]]:
    rss: dict[str, list[int]] = {}
    pids: dict[str, list[int]] = {}
    for t in tasks:
        rss.setdefault(t.name, []).append(t.rss_kb or 0)
        pids.setdefault(t.name, []).append(t.pid)
    groups = [ProgramGroup(n, len(r), sum(r), max(r), tuple(pids[n])) for n, r in rss.items()]
    total = sum(t.rss_kb or 0 for t in tasks)
    return total, sorted(groups, key=lambda g: g.rss_kb, reverse=True)


def _adj_forced_plainly(ev: OomKillEvent) -> tuple[int, int] | None:
    """(victim size, bigger pid) as the rule reads: the victim's first row, and the first of
    the biggest tasks whose adj is above -1000 and below the victim's."""
    v = ev.victim
    adj = v.oom_score_adj
    if adj is None or v.pid is None or not ev.tasks:
        return None

    def size(t: Task) -> int:
        return (t.rss_kb or 0) + (t.swapents_kb or 0) + (t.pgtables_kb or 0)

    row = next((t for t in ev.tasks if t.pid == v.pid), None)
    if row is None:
        return None
    others = [t for t in ev.tasks if t.pid != v.pid and -1000 < (t.oom_score_adj or 0) < adj]
    bigger = max(others, key=size, default=None)
    if bigger is None or size(bigger) <= size(row):
        return None
    return size(row), bigger.pid


def _tasks(rng: random.Random) -> list[Task]:
    def kb() -> int | None:
        return rng.choice([None, 0, 4, 4, 8, 1024, rng.randint(0, 10**7)])

    return [
        Task(
            pid=rng.randint(1, 12),
            name=rng.choice(["a", "b", "php-fpm", "", "a "]),
            rss_kb=kb(),
            swapents_kb=kb(),
            pgtables_kb=kb(),
            oom_score_adj=rng.choice([None, -1000, -999, -1, 0, 0, 1, 500, 1000]),
        )
        for _ in range(rng.randint(0, 14))
    ]


def test_program_groups_in_one_pass_equal_the_plain_rule() -> None:
    rng = random.Random(21)
    for _ in range(3_000):
        tasks = _tasks(rng)
        acc = Accounting(scope="memcg")
        _account_tasks(acc, tasks)
        if not tasks:
            assert acc.gaps == ["the task table"]
            continue
        assert (acc.tasks_rss_kb, acc.groups) == _groups_plainly(tasks)
        assert all(type(g) is ProgramGroup for g in acc.groups)
        # the same task object as max() picks (the first of the largest), not an equal one
        assert acc.largest_task is max(tasks, key=lambda t: t.rss_kb or 0)
        # the first group, asked for alone (before the list) and after it
        fresh = Accounting(scope="memcg")
        _account_tasks(fresh, tasks)
        assert fresh.top_group() == acc.groups[0] == acc.top_group()
        assert fresh.sorted_groups is None  # top_group made no list


def test_adj_forced_in_one_pass_equals_the_plain_rule() -> None:
    rng = random.Random(22)
    found = 0
    for _ in range(5_000):
        tasks = _tasks(rng)
        victim = Victim(
            pid=rng.choice([None, *range(1, 13)]),
            comm="v",
            oom_score_adj=rng.choice([None, -1000, 0, 1, 500, 1000]),
        )
        ev = OomKillEvent(victim=victim, tasks=tasks)
        got = _adj_forced(ev)
        want = _adj_forced_plainly(ev)
        if want is None:
            assert got is None
            continue
        found += 1
        assert got is not None
        assert (got.evidence["victim_kb"], got.evidence["bigger_pid"]) == want
    assert found > 100  # the rule fired often enough to compare
