"""Across kills: the same pod or cgroup killed at the same usage again and again."""

from __future__ import annotations

from kernbot.core.events import Kubernetes, Memcg, OomKillEvent, Victim
from kernbot.core.oom.recurrence import Kill, as_kill, kill_key, recurrence
from recurrence_reference import plain_kills

UID = "0f1c2d3e-1111-2222-3333-444455556666"


def _ev(cid: str, usage_kb: int, limit_kb: int = 262144) -> OomKillEvent:
    path = f"/kubepods/burstable/pod{UID}/{cid}"
    return OomKillEvent(
        victim=Victim(pid=100, comm="calloc"),
        constraint="CONSTRAINT_MEMCG",
        memcg=Memcg(oom_path=path, task_path=path, usage_kb=usage_kb, limit_kb=limit_kb),
        kubernetes=Kubernetes(pod_uid=UID, container="app"),
    )


def test_a_container_restarted_between_kills_is_the_same_pod_container() -> None:
    assert kill_key(_ev("a" * 64, 1)) == kill_key(_ev("b" * 64, 1)) == f"pod:{UID}"


def test_three_kills_ten_minutes_apart_at_the_limit() -> None:
    kills = [as_kill(_ev(c * 64, 262144), at) for c, at in (("a", 0.0), ("b", 610.0))]
    now = as_kill(_ev("c" * 64, 262100), 1190.0)
    assert now is not None
    got = recurrence(now, [k for k in kills if k is not None])
    assert got is not None
    assert got.kills == 3
    assert got.interval_s == 595.0  # the median of 610 s and 580 s
    assert got.text.startswith("grows to its limit every ~10 min (3 kills at 256.0 MiB)")


def test_two_kills_are_not_a_pattern() -> None:
    first = as_kill(_ev("a" * 64, 262144), 0.0)
    now = as_kill(_ev("b" * 64, 262144), 600.0)
    assert first is not None and now is not None
    assert recurrence(now, [first]) is None


def test_kills_at_different_usages_or_of_other_cgroups_do_not_count() -> None:
    now = Kill(1200.0, "cgroup:/a", 100_000, 100_000)
    known = [
        Kill(0.0, "cgroup:/a", 50_000, 100_000),  # half the usage: another situation
        Kill(600.0, "cgroup:/b", 100_000, 100_000),  # another cgroup
        Kill(900.0, "cgroup:/a", 99_000, 100_000),
    ]
    assert recurrence(now, known) is None
    known.append(Kill(300.0, "cgroup:/a", 101_000, 100_000))
    got = recurrence(now, known)
    assert got is not None and got.kills == 3


def test_a_global_oom_has_no_limit_to_grow_into() -> None:
    ev = OomKillEvent(global_oom=True, victim=Victim(pid=1, comm="x"))
    assert kill_key(ev) is None and as_kill(ev, 0.0) is None


def test_the_one_pass_picks_the_kills_the_level_test_picks() -> None:
    """`recurrence` inlines the window and level tests: on random kills (no usage, no limit,
    zero usage, ties in time, other keys, outside the window) it counts what they pick."""
    import itertools
    import random

    rng = random.Random(11)
    usages = [None, 0, 1, 95_000, 99_000, 100_000, 104_999, 105_300, 200_000]
    limits = [None, 100_000, 120_000]
    checked = 0
    for _ in range(3000):
        current = Kill(
            rng.choice([1e6, 1e6 + 0.5]), "cgroup:/a", rng.choice(usages), rng.choice(limits)
        )
        known = [
            Kill(
                current.at - rng.choice([0, 0.5, 1, 60, 600, 7 * 86400, 7 * 86400 + 1, -5]),
                rng.choice(["cgroup:/a", "cgroup:/a", "pod:x"]),
                rng.choice(usages),
                rng.choice(limits),
            )
            for _ in range(rng.randrange(0, 12))
        ]
        want = plain_kills(current, known)
        got = recurrence(current, known)
        if len(want) < 3 or not any(b.at > a.at for a, b in itertools.pairwise(want)):
            assert got is None
            continue
        checked += 1
        assert got is not None
        assert got.kills == len(want) and got.since == want[0].at
    assert checked > 100
