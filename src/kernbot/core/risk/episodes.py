"""Risk episodes: one warning per crossing, updated as it goes, ended by calm or by the kill.

Per cgroup: the first at-risk sample opens an episode (`start`); while it lasts, `ongoing` updates
go out at most every `update_min_s` and only when the numbers moved; calm for `end_after_s` ends
it (`ended`); an OOM kill in that cgroup ends it as `killed` with the kill's id, and the kill is
told the episode's id (so both Slack messages can point at each other). After a kill a cgroup must
be calm once before a new episode may open, so a restarted container still at its limit is not
warned twice for the same trouble.

Nested limits that are the same limit (a Kubernetes pod with one container: the pod cgroup's
limit is the container's) would give two warnings for one trouble: a cgroup does not open an
episode while a cgroup above or below it with nearly the same limit (`SAME_LIMIT`) is at risk or
in an episode. The deepest one (the container) is warned about.

Every event of one episode has the same `id` and a growing `revision`, so the bot updates one
message. `export_state`/`restore` let the agent persist open episodes: a restart continues them
instead of warning again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kernbot.core.cgroup_identity import identify, identify_container
from kernbot.core.events import OomKillEvent, OomRiskEvent, PsiAvg10, RiskState
from kernbot.core.risk.assess import Assessment, RiskSettings, assess
from kernbot.core.risk.sample import MemSample, Series
from kernbot.core.risk.summary import severity

HOST = "/"
PERCENT_STEP = 2.0
"""An `ongoing` update needs the percentage to move this many points..."""
ETA_CHANGE = 0.25
"""...or the time to the limit to change by this fraction (or a reason to appear or go)."""
SAME_LIMIT = 0.95
"""Nested cgroups whose limits are within 5 % of each other share one episode."""
VANISHED_GRACE_S = 120.0
"""A kill reported this soon after its cgroup vanished (the killed container's cgroup is removed
while the kernel's report is still being read) still turns that episode into `killed`."""


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass
class _Episode:
    event: OomRiskEvent
    started: float
    last_emit: float
    calm_since: float | None = None


@dataclass
class _Track:
    series: Series
    episode: _Episode | None = None
    rearm: bool = False
    """A kill ended the last episode: wait for one calm sample before opening another."""
    last: Assessment | None = field(default=None)
    limit_kb: int = 0


def _within(path: str, parent: str) -> bool:
    return parent in (path, HOST) or path.startswith(parent.rstrip("/") + "/")


class RiskTracker:
    def __init__(
        self, *, host: str, boot_id: str | None, settings: RiskSettings | None = None
    ) -> None:
        self.host = host
        self.boot_id = boot_id
        self.settings = settings or RiskSettings()
        self._tracks: dict[str, _Track] = {}
        self._vanished: dict[str, tuple[_Episode, float]] = {}

    # ---- what the agent asks ----------------------------------------------------------------
    def is_hot(self, cgroup: str) -> bool:
        """Whether this cgroup has an open episode or was last seen near a threshold: the
        reader then reads every file a decision may need (stat, PSI) on each sample."""
        tr = self._tracks.get(cgroup)
        if tr is None:
            return False
        if tr.episode is not None or tr.rearm:
            return True
        last = tr.last
        return last is not None and (
            last.percent >= self.settings.eta_min_percent or last.growth_kb_per_s is not None
        )

    def open_count(self) -> int:
        return sum(1 for tr in self._tracks.values() if tr.episode is not None)

    def open_episodes(self) -> list[OomRiskEvent]:
        """The latest revision of every open episode, worst first (`summary.severity`)."""
        out = [tr.episode.event.model_copy(deep=True) for tr in self._tracks.values() if tr.episode]
        return sorted(out, key=severity, reverse=True)

    # ---- samples ------------------------------------------------------------------------------
    def observe(self, sample: MemSample, now: float) -> OomRiskEvent | None:
        """One sample; returns the episode event to ship now, if any."""
        out = self.observe_all([sample], now)
        return out[0] if out else None

    def observe_all(self, samples: list[MemSample], now: float) -> list[OomRiskEvent]:
        """One round of samples (taken together); the episode events to ship now. Every sample
        is judged before any episode opens, deepest cgroups first, so a pod sees that its only
        container is at risk in the same round (see `_covered`)."""
        judged: list[tuple[MemSample, _Track, Assessment]] = []
        for sample in samples:
            tr = self._tracks.get(sample.cgroup)
            if tr is None:
                tr = self._tracks[sample.cgroup] = _Track(series=Series(self.settings.window_s))
            tr.series.push(now, float(sample.working_set_kb))
            a = assess(sample, tr.series, self.settings)
            tr.last, tr.limit_kb = a, sample.limit_kb
            judged.append((sample, tr, a))
        judged.sort(key=lambda j: -j[0].cgroup.count("/") if j[0].cgroup != HOST else 0)
        out: list[OomRiskEvent] = []
        for sample, tr, a in judged:
            ev = self._step(sample, tr, a, now)
            if ev is not None:
                out.append(ev)
        return out

    def _step(
        self, sample: MemSample, tr: _Track, a: Assessment, now: float
    ) -> OomRiskEvent | None:
        ep = tr.episode
        if ep is None:
            if tr.rearm:
                tr.rearm = not a.calm
                return None
            if not a.at_risk or self._covered(sample.cgroup, sample.limit_kb):
                return None
            event = self._new_event(sample, now)
            tr.episode = _Episode(event=event, started=now, last_emit=now)
            return self._emit(tr.episode, "start", sample, a, now, bump=False)
        if a.calm:
            ep.calm_since = ep.calm_since if ep.calm_since is not None else now
            if now - ep.calm_since >= self.settings.end_after_s:
                tr.episode = None
                return self._emit(ep, "ended", sample, a, now)
        else:
            ep.calm_since = None
        if now - ep.last_emit >= self.settings.update_min_s and self._moved(ep.event, a):
            return self._emit(ep, "ongoing", sample, a, now)
        return None

    def _covered(self, cgroup: str, limit_kb: int) -> bool:
        """Whether a nested cgroup with nearly the same limit speaks for this one: a descendant
        at risk (deeper is more precise), or an ancestor already in an episode."""
        if cgroup == HOST:
            return False
        for other, tr in self._tracks.items():
            if other in (cgroup, HOST) or not tr.limit_kb:
                continue
            if min(tr.limit_kb, limit_kb) < SAME_LIMIT * max(tr.limit_kb, limit_kb):
                continue
            if _within(other, cgroup) and (
                tr.episode is not None or (tr.last is not None and tr.last.at_risk)
            ):
                return True
            if _within(cgroup, other) and tr.episode is not None:
                return True
        return False

    def vanished(self, present: set[str], now: float) -> list[OomRiskEvent]:
        """Forget cgroups no longer present (container removed); their episodes end."""
        out: list[OomRiskEvent] = []
        self._vanished = {
            c: (ep, at) for c, (ep, at) in self._vanished.items() if now - at <= VANISHED_GRACE_S
        }
        for cgroup in [c for c in self._tracks if c not in present and c != HOST]:
            tr = self._tracks.pop(cgroup)
            if tr.episode is not None:
                self._vanished[cgroup] = (tr.episode, now)
                ev = tr.episode.event
                ev.revision += 1
                ev.state = "ended"
                ev.ended = _iso(now)
                ev.time = _iso(now)
                out.append(ev.model_copy(deep=True))
        return out

    def on_kill(self, kill: OomKillEvent, now: float) -> OomRiskEvent | None:
        """A kill: the episode of the cgroup that hit its limit (the host's for a global OOM)
        ends as `killed`; `kill` gets `risk_id`/`risk_started`. None when nothing warned."""
        path = kill.memcg.oom_path if kill.memcg is not None else None
        if kill.global_oom or not path or kill.constraint == "CONSTRAINT_NONE":
            path = HOST
        tr = self._tracks.get(path)
        if tr is None or tr.episode is None:
            # the limit hit may be a parent or child of the cgroup that was warned about
            match = [
                (c, t)
                for c, t in self._tracks.items()
                if t.episode is not None and c != HOST and (_within(path, c) or _within(c, path))
            ]
            if not match or path == HOST:
                return self._killed_after_vanishing(path, kill, now)
            tr = max(match, key=lambda ct: len(ct[0]))[1]
        ep = tr.episode
        assert ep is not None
        tr.episode = None
        tr.rearm = True
        tr.series.clear()
        return self._killed(ep, kill, now)

    def _killed_after_vanishing(
        self, path: str, kill: OomKillEvent, now: float
    ) -> OomRiskEvent | None:
        for cgroup, (ep, at) in list(self._vanished.items()):
            if now - at <= VANISHED_GRACE_S and (_within(path, cgroup) or _within(cgroup, path)):
                del self._vanished[cgroup]
                return self._killed(ep, kill, now)
        return None

    def _killed(self, ep: _Episode, kill: OomKillEvent, now: float) -> OomRiskEvent:
        ev = ep.event
        ev.revision += 1
        ev.state = "killed"
        ev.kill_id = kill.id
        ev.ended = _iso(now)
        ev.time = _iso(now)
        kill.risk_id = ev.id
        kill.risk_started = ev.started
        return ev.model_copy(deep=True)

    # ---- persistence ----------------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        return {
            "boot_id": self.boot_id,
            "episodes": [
                {"started": tr.episode.started, "event": tr.episode.event.model_dump(mode="json")}
                for tr in self._tracks.values()
                if tr.episode is not None
            ],
            "rearm": sorted(c for c, tr in self._tracks.items() if tr.rearm),
        }

    def restore(self, state: dict[str, Any], now: float) -> None:
        """Continue the episodes of a previous run of this boot (another boot's are dropped:
        every process they were about is gone)."""
        if state.get("boot_id") != self.boot_id:
            return
        for item in state.get("episodes", []):
            event = OomRiskEvent.model_validate(item["event"])
            tr = self._tracks.setdefault(event.cgroup, _Track(Series(self.settings.window_s)))
            tr.episode = _Episode(event=event, started=float(item["started"]), last_emit=now)
        for cgroup in state.get("rearm", []):
            track = self._tracks.setdefault(str(cgroup), _Track(Series(self.settings.window_s)))
            track.rearm = True

    # ---- building events ------------------------------------------------------------------------
    def _new_event(self, sample: MemSample, now: float) -> OomRiskEvent:
        key = f"{self.host}\x00{self.boot_id}\x00{sample.cgroup}\x00{now:.3f}"
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        container = identify_container(sample.cgroup) if sample.cgroup != HOST else None
        return OomRiskEvent(
            id=f"{self.boot_id or self.host}:risk:{digest}",
            host=self.host,
            boot_id=self.boot_id,
            cgroup=sample.cgroup,
            kubernetes=identify(sample.cgroup),
            container=(
                container.owner() if container is not None and container.kind != "root" else None
            ),
            started=_iso(now),
            cgroup_version=sample.version,
        )

    def _moved(self, ev: OomRiskEvent, a: Assessment) -> bool:
        if a.reasons and set(ev.reasons) != set(a.reasons):
            return True
        if ev.percent is not None and abs(a.percent - ev.percent) >= PERCENT_STEP:
            return True
        if (ev.eta_s is None) != (a.eta_s is None):
            return True
        if ev.eta_s is not None and a.eta_s is not None:
            return abs(a.eta_s - ev.eta_s) >= ETA_CHANGE * max(ev.eta_s, 1.0)
        return False

    def _emit(
        self,
        ep: _Episode,
        state: RiskState,
        sample: MemSample,
        a: Assessment,
        now: float,
        *,
        bump: bool = True,
    ) -> OomRiskEvent:
        ev = ep.event
        if bump:
            ev.revision += 1
        ev.state = state
        ev.time = _iso(now)
        ev.usage_kb = sample.usage_kb
        ev.working_set_kb = sample.working_set_kb
        ev.limit_kb = sample.limit_kb
        ev.high_kb = sample.high_kb
        ev.percent = round(a.percent, 1)
        ev.peak_percent = max(ev.peak_percent or 0.0, ev.percent)
        ev.growth_kb_per_s = round(a.growth_kb_per_s, 3) if a.growth_kb_per_s is not None else None
        ev.eta_s = round(a.eta_s, 1) if a.eta_s is not None else None
        ev.psi = (
            PsiAvg10(some_avg10=sample.psi_some, full_avg10=sample.psi_full)
            if sample.psi_some is not None or sample.psi_full is not None
            else None
        )
        if state in ("start", "ongoing"):
            # keep the reasons that opened it visible until something else is true
            ev.reasons = list(a.reasons) or ev.reasons
        if state == "ended":
            ev.ended = _iso(now)
        ep.last_emit = now
        return ev.model_copy(deep=True)
