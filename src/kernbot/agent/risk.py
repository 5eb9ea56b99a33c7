"""The OOM-risk sampler: cgroup and host readings in, `oom_risk` episode events out.

Owns the reader (kernbot.agent.cgroups) and the pure tracker (kernbot.core.risk). Each `sample`
reads the host and every limited cgroup once (more files only for cgroups near a threshold),
re-walks the tree every `discover_s`, and completes the events it returns with the largest
processes and the cgroup's own counters (read only then). Open episodes are saved to
`state_path` whenever one changes, so a restarted agent continues them instead of warning again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernbot.agent.cgroups import CgroupReader, host_sample, top_processes
from kernbot.agent.cgroups.host import host_total_kb
from kernbot.core.events import Event, OomKillEvent, OomRiskEvent
from kernbot.core.risk import RiskTracker

log = logging.getLogger(__name__)
TOP_N = 5
KILL_MEMORY = 256
"""Kill ids remembered with the episode they ended (a kill is shipped in several revisions)."""


class RiskSampler:
    def __init__(
        self,
        *,
        reader: CgroupReader,
        tracker: RiskTracker,
        proc_root: Path,
        state_path: Path | None,
        discover_s: float = 30.0,
    ) -> None:
        self.reader = reader
        self.tracker = tracker
        self.proc_root = proc_root
        self.state_path = state_path
        self.discover_s = discover_s
        self._discovered_at = float("-inf")
        self._kills: dict[str, tuple[str | None, str | None]] = {}
        self._last_top: dict[str, tuple[float, dict[int, int]]] = {}
        """Per open episode id: when its top was read and each pid's RSS (kB) then."""
        self.samples = 0

    def load(self, now: float) -> None:
        if self.state_path is None:
            return
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("cannot read OOM-risk state %s: %s", self.state_path, exc)
            return
        if isinstance(state, dict):
            try:
                self.tracker.restore(state, now)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("ignoring OOM-risk state %s: %s", self.state_path, exc)

    def _save(self) -> None:
        if self.state_path is None:
            return
        tmp = self.state_path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self.tracker.export_state()), encoding="utf-8")
            os.replace(tmp, self.state_path)
        except OSError as exc:
            log.error("cannot save OOM-risk state to %s: %s", self.state_path, exc)

    def sample(self, now: float) -> list[OomRiskEvent]:
        """One round over the host and every limited cgroup; the events to ship now."""
        out: list[OomRiskEvent] = []
        if now - self._discovered_at >= self.discover_s:
            present = self.reader.discover(host_total_kb(self.proc_root))
            self._discovered_at = now
            out += self.tracker.vanished(present, now)
        samples = self.reader.sample(now, self.tracker.is_hot)
        host = host_sample(self.proc_root)
        if host is not None:
            samples.append(host)
        out += self.tracker.observe_all(samples, now)
        self.samples += 1
        for ev in out:
            self._complete(ev, now)
        if out:
            self._save()
        return out

    def _complete(self, ev: OomRiskEvent, now: float) -> None:
        if ev.state not in ("start", "ongoing") or ev.id is None:
            self._last_top.pop(ev.id or "", None)
            return
        pids = None if ev.cgroup == "/" else self.reader.pids(ev.cgroup)
        ev.top = top_processes(self.proc_root, pids, TOP_N)
        before = self._last_top.get(ev.id)
        if before is not None and now > before[0]:
            for p in ev.top:
                was = before[1].get(p.pid)
                if was is not None and p.rss_kb is not None:
                    p.growth_kb_per_s = round((p.rss_kb - was) / (now - before[0]), 1)
        self._last_top[ev.id] = (now, {p.pid: p.rss_kb or 0 for p in ev.top})
        if ev.cgroup != "/":
            counters = self.reader.memory_events(ev.cgroup)
            if counters:
                ev.memory_events = counters

    def on_kill(self, kill: OomKillEvent, now: float) -> OomRiskEvent | None:
        """Name the warned episode on the kill (every revision of it) and end the episode as
        `killed`; returns that last episode event, once."""
        if kill.id is not None and kill.id in self._kills:
            kill.risk_id, kill.risk_started = self._kills[kill.id]
            return None
        ev = self.tracker.on_kill(kill, now)
        if kill.id is not None:
            if len(self._kills) >= KILL_MEMORY:
                self._kills.pop(next(iter(self._kills)))
            self._kills[kill.id] = (kill.risk_id, kill.risk_started)
        if ev is not None:
            self._last_top.pop(ev.id or "", None)
            self._save()
        return ev

    def open_count(self) -> int:
        return self.tracker.open_count()

    def risks(self) -> list[OomRiskEvent]:
        """Open episodes, worst first."""
        return self.tracker.open_episodes()


class RiskStage:
    """The sampler in the agent's pipeline (kernbot.agent.stages): a live OOM kill ends the
    episode of its cgroup and is named on it (the `killed` update follows the kill through the
    later stages); the periodic `sample` job sends its episode events on through them too."""

    def __init__(self, sampler: RiskSampler, wall: Callable[[], float]) -> None:
        self.sampler = sampler
        self.wall = wall
        self.resume: Callable[[Event, Any], None] | None = None

    def run(self, ev: Event, live: bool) -> list[Event]:
        if not live or not isinstance(ev, OomKillEvent):
            return [ev]
        killed = self.sampler.on_kill(ev, self.wall())
        return [ev] if killed is None else [ev, killed]

    def watched(self) -> int:
        """Memory cgroups with a limit being sampled now."""
        return len(self.sampler.reader.cgroups)

    async def sample(self) -> None:
        """One round of sampling (a periodic job)."""
        for ev in self.sampler.sample(self.wall()):
            if self.resume is not None:
                self.resume(ev, self)
