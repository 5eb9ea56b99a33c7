"""The thresholds: is this cgroup at risk now, or calm enough to end an episode?

At risk when any of: the working set at or above `percent` of the limit; the time from the recent
peak to the limit at the fitted growth of the peaks under `eta_s` (kernbot.core.risk.fit; once the
fit covers `min_fit_s` and the working set is past `eta_min_percent`, so a process warming up in a
roomy cgroup is not an alarm); memory PSI
full avg10 at or above `psi_full`. Calm (an episode may end) when none of these holds, the working
set is below `end_percent` and PSI full is below `psi_full`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kernbot.core.risk.fit import peak_envelope, robust_slope
from kernbot.core.risk.sample import MemSample, Series

MIN_FIT_SAMPLES = 4


@dataclass(frozen=True, slots=True)
class RiskSettings:
    percent: float = 90.0
    eta_s: float = 600.0
    psi_full: float = 10.0
    end_percent: float = 80.0
    end_after_s: float = 120.0
    """Calm this long ends an episode."""
    window_s: float = 180.0
    """Growth is fitted over the samples of this many seconds."""
    sawtooth_s: float = 60.0
    """Garbage-collection cycles up to this long are not a trend (the peaks are fitted)."""
    min_fit_s: float = 30.0
    """The fit counts once its samples cover this many seconds."""
    eta_min_percent: float = 50.0
    """Below this share of the limit the time-to-limit alone does not open an episode."""
    update_min_s: float = 30.0
    """At most one `ongoing` update per episode this often (and only when something moved)."""


@dataclass(frozen=True, slots=True)
class Assessment:
    percent: float
    growth_kb_per_s: float | None
    eta_s: float | None
    reasons: tuple[str, ...]
    calm: bool

    @property
    def at_risk(self) -> bool:
        return bool(self.reasons)


def current_growth(times: list[float], peaks: list[float]) -> float | None:
    """The fitted growth of the peaks, but no more than that of their recent half: memory that
    climbed early in the window and has been flat since (a service warming up) is not growing
    now, while a steady leak gives both fits the same slope."""
    if len(times) < MIN_FIT_SAMPLES:
        return None
    growth = robust_slope(times, peaks)
    half = times[-1] - (times[-1] - times[0]) / 2
    recent = [i for i, t in enumerate(times) if t >= half]
    if growth is not None and growth > 0 and len(recent) >= MIN_FIT_SAMPLES:
        late = robust_slope(times[recent[0] :], peaks[recent[0] :])
        if late is not None:
            growth = min(growth, late)
    return growth


def percent_of(sample: MemSample) -> float:
    return 100.0 * sample.working_set_kb / sample.limit_kb if sample.limit_kb > 0 else 0.0


def assess(sample: MemSample, series: Series, settings: RiskSettings) -> Assessment:
    """Judge `sample` (already pushed onto `series`)."""
    pct = percent_of(sample)
    growth: float | None = None
    eta: float | None = None
    # The fit is skipped where its answer could not matter (cheap for hundreds of idle cgroups).
    if (
        pct >= settings.eta_min_percent
        and len(series) >= MIN_FIT_SAMPLES
        and series.span_s >= settings.min_fit_s + settings.sawtooth_s
    ):
        times, peaks = peak_envelope(series.times, series.values, settings.sawtooth_s)
        growth = current_growth(times, peaks)
        if growth is not None and growth > 0:
            level = max(peaks[-1], sample.working_set_kb)
            eta = max(0.0, (sample.limit_kb - level) / growth)
    reasons: list[str] = []
    if pct >= settings.percent:
        reasons.append("percent")
    if eta is not None and eta < settings.eta_s:
        reasons.append("eta")
    psi_high = sample.psi_full is not None and sample.psi_full >= settings.psi_full
    if psi_high:
        reasons.append("psi")
    calm = not reasons and pct < settings.end_percent and not psi_high
    return Assessment(
        percent=pct, growth_kb_per_s=growth, eta_s=eta, reasons=tuple(reasons), calm=calm
    )
