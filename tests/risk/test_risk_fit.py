"""The growth fit: a steady leak is a trend, a GC sawtooth and noise are not."""

from __future__ import annotations

import random

import pytest

from kernbot.core.risk.fit import peak_envelope, robust_slope


def test_linear_growth_gives_its_slope() -> None:
    t = [i * 5.0 for i in range(36)]
    v = [1000.0 + 1024.0 * x for x in t]
    slope = robust_slope(t, v)
    assert slope == pytest.approx(1024.0)


def test_outliers_do_not_move_the_slope() -> None:
    t = [i * 5.0 for i in range(36)]
    v = [50_000.0 + 100.0 * x for x in t]
    v[10] += 80_000.0  # a page-cache spike
    v[20] -= 40_000.0
    assert robust_slope(t, v) == pytest.approx(100.0, rel=0.01)


@pytest.mark.parametrize("period_s", [10.0, 20.0, 30.0, 45.0, 60.0])
@pytest.mark.parametrize("offset_s", [0.0, 5.0, 15.0, 25.0])
def test_gc_sawtooth_is_not_a_trend(period_s: float, offset_s: float) -> None:
    """A heap that climbs 60 -> 92 % of the limit and collects back, again and again, over a
    180 s window: a fit over the raw samples calls it growth, the fit over the peaks does not."""
    limit = 1_000_000.0
    t = [offset_s + i * 5.0 for i in range(37)]
    v = [limit * (0.60 + 0.32 * ((x % period_s) / period_s)) for x in t]
    et, ev = peak_envelope(t, v, 60.0)
    slope = robust_slope(et, ev)
    assert slope is not None
    assert abs(slope) < 1e-9


def test_leak_under_a_sawtooth_is_found() -> None:
    limit = 1_000_000.0
    t = [i * 5.0 for i in range(37)]
    v = [limit * (0.30 + 0.0005 * x + 0.2 * ((x % 40) / 40)) for x in t]
    et, ev = peak_envelope(t, v, 60.0)
    assert robust_slope(et, ev) == pytest.approx(0.0005 * limit, rel=0.2)


def test_envelope_needs_a_full_width_of_history() -> None:
    et, ev = peak_envelope([0.0, 5.0, 10.0], [1.0, 3.0, 2.0], 5.0)
    assert et == [5.0, 10.0] and ev == [3.0, 3.0]
    assert peak_envelope([0.0, 1.0], [1.0, 2.0], 60.0) == ([], [])


def test_noisy_growth_is_found() -> None:
    rng = random.Random(7)
    t = [i * 5.0 for i in range(36)]
    v = [200_000.0 + 300.0 * x + rng.uniform(-5000, 5000) for x in t]
    assert robust_slope(t, v) == pytest.approx(300.0, rel=0.15)


def test_too_few_samples() -> None:
    assert robust_slope([0.0, 5.0], [1.0, 2.0]) is None
    assert robust_slope([5.0, 5.0, 5.0], [1.0, 2.0, 3.0]) is None
