"""The pipeline's per-event stages, between the detector and the store (ARCHITECTURE.md).

Each stage takes one event and returns the events that go on (usually the same one; the SYN
episode stage may turn a kernel line into an episode event, or hold it back). `live` is False for
history (the first start's backlog, events older than `history_max_age_s`): those are stored and
shipped as they are, only advised. The order the composition root gives them in is the order
they run: episodes, enrichment, pod names from the Kubernetes API, advice, kill accounting.

A stage that only applies to one event kind says so in its own `run`; the pipeline has no kind
in it, so a new kind needs no stage unless it wants live context.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from kernbot.agent.enrich import Enricher
from kernbot.agent.proc import ProcReader
from kernbot.core.advice import advise
from kernbot.core.events import Event, OomKillEvent, SynFloodEvent
from kernbot.core.oom.reconcile import OomReconciler
from kernbot.core.syn.episodes import SynEpisodeTracker

log = logging.getLogger(__name__)


class Stage(Protocol):
    def run(self, ev: Event, live: bool) -> list[Event]: ...


Resume = Callable[[Event, "Stage"], None]
"""`Pipeline.resume`: send a revised event through the stages after the given one, then store."""


class SynEpisodes:
    """A kernel "Possible SYN flooding" line opens (or joins) an episode; the tracker decides what
    ships. The periodic `sample` of the TcpExt counters opens, updates and ends episodes too; its
    events go on through the stages after this one (`resume`).

    Quiet samples skip reading the listeners (a walk of every process's fds), so an episode opened
    by a kernel line between samples first gives the tracker the listeners of now."""

    def __init__(
        self, tracker: SynEpisodeTracker, proc: ProcReader, wall: Callable[[], float]
    ) -> None:
        self.tracker = tracker
        self.proc = proc
        self.wall = wall
        self.resume: Resume | None = None

    def run(self, ev: Event, live: bool) -> list[Event]:
        if not live or not isinstance(ev, SynFloodEvent):
            return [ev]
        if ev.port not in self.tracker.open_ports:
            self.tracker.set_context(self.proc.listeners(), self.proc.net_sysctls())
        return list(self.tracker.on_kernel_event(ev, self.wall()))

    async def sample(self) -> None:
        """One sample of the counters (a periodic job)."""
        now = self.wall()
        counters = self.proc.tcpext()
        if self.tracker.needs_context(now, counters):
            listeners, sysctls = self.proc.listeners(), self.proc.net_sysctls()
        else:  # quiet: this sample cannot use them, skip the fd walk
            listeners, sysctls = self.tracker.context
        for ev in self.tracker.sample(now, counters, listeners, sysctls):
            if self.resume is not None:
                self.resume(ev, self)


class Enrich:
    """Live host context (kernbot.agent.enrich) for live events; a failure ships the event bare."""

    def __init__(self, enricher: Enricher) -> None:
        self.enricher = enricher

    def run(self, ev: Event, live: bool) -> list[Event]:
        if not live:
            return [ev]
        try:
            return [self.enricher.enrich(ev)]
        except Exception:
            log.exception("enrichment failed; shipping the event without context")
            return [ev]


class ApiPodNames:
    """Pod names from the Kubernetes API when the kubelet's logs did not settle them.

    The event goes on at once with the pod UID (the API never holds up an alert); the lookup runs
    as a task and its answer re-enters the pipeline after this stage (`resume`), so it is advised
    and stored as the next revision of the same event. A later revision that arrives while the
    lookup runs is the one the names go onto. One lookup per event id.
    """

    def __init__(self, enricher: Enricher) -> None:
        self.enricher = enricher
        self.resume: Resume | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self._awaiting: dict[str, OomKillEvent] = {}

    def run(self, ev: Event, live: bool) -> list[Event]:
        if live and isinstance(ev, OomKillEvent) and ev.id is not None:
            if ev.id in self._awaiting:
                self._awaiting[ev.id] = ev
            elif self.resume is not None and self.enricher.pods.wants_api(ev.kubernetes):
                self._awaiting[ev.id] = ev
                task = asyncio.get_running_loop().create_task(self._lookup(ev.id))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        return [ev]

    async def _lookup(self, event_id: str) -> None:
        first = self._awaiting[event_id]
        try:
            k8s = first.kubernetes
            names = await self.enricher.pods.resolve_async(k8s) if k8s is not None else None
        except Exception:  # an injected client's own failure: the alert already went out
            log.exception("pod name lookup for %s failed", event_id)
            names = None
        finally:
            latest = self._awaiting.pop(event_id)
        if names is not None and names.name_source == "kubernetes-api" and self.resume:
            self.resume(self.enricher.with_names(latest, names), self)

    async def cancel(self) -> None:
        """Stop pending lookups (at shutdown a lookup is not worth waiting for)."""
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("pod name lookup failed")


class Advise:
    """Advice from the core's rules, once per event, over whatever context it has by now."""

    def run(self, ev: Event, live: bool) -> list[Event]:
        ev.advice = advise(ev)
        return [ev]


class KillAccounting:
    """Tells the vmstat reconciler how many kills the log showed (once per event id), so only
    kills the log never printed become `missing_from_log` events."""

    def __init__(self, reconciler: OomReconciler) -> None:
        self.reconciler = reconciler
        self._counted: set[str] = set()

    def run(self, ev: Event, live: bool) -> list[Event]:
        if isinstance(ev, OomKillEvent) and ev.id is not None and ev.id not in self._counted:
            kills = _kills_in(ev)
            if kills:
                self._counted.add(ev.id)
                self.reconciler.saw_kills(kills)
        return [ev]


def _kills_in(ev: OomKillEvent) -> int:
    if ev.missing_from_log or ev.panic or ev.victim.pid is None:
        return 0
    return max(1, len(ev.group_victims)) if ev.group_kill else 1
