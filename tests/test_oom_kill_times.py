"""`KillTimes`: the agent's recurrence from kill times kept by level must be what `recurrence`
says over the same kills, and both what the first version said (written out plainly in
tests/recurrence_reference.py)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from kernbot.core.context import Recurrence
from kernbot.core.oom.recurrence import WINDOW_S, Kill, KillTimes, recurrence
from recurrence_reference import plain_recurrence as plain

KEY = "cgroup:/a"
NOW = 1_750_000_000.0
USAGES = [None, 0, 1, 95_000, 95_238, 99_000, 100_000, 104_999, 105_263, 105_264, 200_000]
LIMITS = [None, 0, 100_000, 120_000]
OFFSETS = [0.0, 0.25, 0.5, 1.0, 1.5, 60.0, 600.0, 3600.0, WINDOW_S, WINDOW_S + 0.5, -0.5, -60.0]
"""Seconds before the current kill: ties, the window's edge and past it, after it (negative)."""


def _json(r: Recurrence | None) -> str | None:
    return None if r is None else r.model_dump_json()


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[Kill], list[int], Kill]:
    """Kills at a few levels (so that patterns are common), some of them to discard again, and
    the current kill at one of those levels or another."""
    levels = draw(
        st.lists(
            st.tuples(st.sampled_from(USAGES), st.sampled_from(LIMITS)), min_size=1, max_size=4
        )
    )
    level = st.sampled_from(levels)
    at = st.sampled_from(OFFSETS).map(lambda off: NOW - off)
    added = draw(st.lists(st.builds(lambda a, lv: Kill(a, KEY, *lv), at, level), max_size=40))
    dropped = draw(st.lists(st.integers(0, 39), max_size=20))
    usage, limit = draw(
        st.one_of(level, st.tuples(st.sampled_from(USAGES), st.sampled_from(LIMITS)))
    )
    return added, dropped, Kill(NOW, KEY, usage, limit)


@settings(max_examples=2000, deadline=None)
@given(case=cases(), current_added=st.booleans(), more=st.booleans())
def test_kill_times_say_what_recurrence_says(
    case: tuple[list[Kill], list[int], Kill], current_added: bool, more: bool
) -> None:
    """Kills added and some discarded again (a time held by two kills stays until both go),
    with or without the current kill among them (the agent adds it first)."""
    added, dropped, current = case
    times = KillTimes()
    known = list(added)
    for k in added:
        times.add(k)
    for i in dropped:
        if i < len(added) and added[i] in known:
            known.remove(added[i])
            times.discard(added[i])
    if current_added:
        known.append(current)
        times.add(current)
    want = plain(current, known, more)
    assert _json(recurrence(current, known, more=more)) == _json(want)
    assert _json(times.recurrence_of(current, more=more)) == _json(want)


@settings(max_examples=300, deadline=None)
@given(
    offsets=st.lists(st.floats(-1e6, 1e7, allow_nan=False), min_size=0, max_size=120),
    usages=st.lists(st.integers(0, 10**9), min_size=1, max_size=3),
    shift=st.integers(-(10**8), 10**8),
)
def test_any_times_and_usages(offsets: list[float], usages: list[int], shift: int) -> None:
    """Arbitrary times (any spacing, the window's edge by chance) and usages (the current one
    near the first, within 5 % of it or not)."""
    current = Kill(NOW, KEY, max(0, usages[0] + shift), None)
    known = [Kill(NOW - off, KEY, usages[i % len(usages)], None) for i, off in enumerate(offsets)]
    times = KillTimes()
    for k in [*known, current]:
        times.add(k)
    want = plain(current, known, False)
    assert _json(times.recurrence_of(current)) == _json(want)


def test_a_loop_at_one_level() -> None:
    """The agent's case: one level, a kill every half second, the oldest forgotten."""
    times = KillTimes()
    known: list[Kill] = []
    for i in range(300):
        kill = Kill(NOW + i * 0.5, KEY, 524_288, 524_288)
        times.add(kill)
        known.append(kill)
        if len(known) > 100:
            times.discard(known.pop(0))
        want = plain(kill, known, len(known) == 100)
        assert _json(times.recurrence_of(kill, more=len(known) == 100)) == _json(want)
    assert want is not None and want.kills == 100 and want.interval_s == 0.5


def test_a_time_is_kept_while_a_kill_holds_it() -> None:
    times = KillTimes()
    a, b = Kill(NOW - 2, KEY, 1000, None), Kill(NOW - 2, KEY, 1000, 5)
    twin = Kill(NOW - 2, KEY, 1000, None)
    for k in (a, twin, b, Kill(NOW - 1, KEY, 1000, None)):
        times.add(k)
    current = Kill(NOW, KEY, 1000, None)
    times.discard(a)
    got = times.recurrence_of(current)
    assert got is not None and got.kills == 3 and got.since == NOW - 2
    times.discard(twin)
    times.discard(b)
    assert times.recurrence_of(current) is None
    times.discard(Kill(NOW - 5, KEY, 1, None))  # never added: nothing happens


def test_nan_times_are_never_in_a_window() -> None:
    times = KillTimes()
    nan = Kill(math.nan, KEY, 1000, None)
    times.add(nan)
    times.discard(nan)
    known = [nan, Kill(NOW - 2, KEY, 1000, None), Kill(NOW - 1, KEY, 1000, None)]
    for k in known:
        times.add(k)
    current = Kill(NOW, KEY, 1000, None)
    got = times.recurrence_of(current)
    assert got is not None and got.kills == 3
    assert _json(got) == _json(plain(current, known, False))
    assert times.recurrence_of(Kill(math.nan, KEY, 1000, None)) is None
