"""Enricher: what a senior SRE would look up on the host right after the kernel's message.

For an OOM kill: memory and PSI now, who has the highest oom_score now ("who is next"), the vm
sysctls that shaped the kill, pod names for the killed container, and how many kills this cgroup
had in the last 24 hours. For a SYN flood: the listener (owner, queues, half-open count), the
TcpExt counters and the net sysctls. Then the core's advice is computed over all of it.

Best effort by design: a /proc read that fails is noted in `context["enrich_errors"]` and the
event goes out anyway. The event passed in is never modified; a copy is returned.

Cost (issue 11): the detector hands out a new revision of a report as lines arrive, several per
OOM event, and a node in an OOM loop prints a hundred reports a second. The /proc snapshot is
therefore read once per event (its first revision, the one closest to the kill) and reused for
the event's later revisions, and the whole-process `top_oom_score` scan is shared by the events
of one `TOP_TTL_S` window; reading all of /proc per revision cost most of a core.
"""

from __future__ import annotations

import copy
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kernbot.agent.pods import PodResolver, describe_source
from kernbot.agent.proc import ProcReader
from kernbot.core.advice import advise
from kernbot.core.cgroup_identity import identify
from kernbot.core.events import Event, Kubernetes, OomKillEvent, SynFloodEvent
from kernbot.core.syn.episodes import COUNTERS
from kernbot.core.wire import Listener, ProcInfo

DAY_S = 24 * 3600.0
TOP_TTL_S = 1.0
"""Events within this many seconds share one scan of every process's oom_score."""
SNAPSHOTS_KEPT = 256
"""Per-event /proc snapshots kept for later revisions (far more than are open at once)."""


def _event_ts(event: OomKillEvent) -> float | None:
    if not event.time:
        return None
    try:
        ts = datetime.fromisoformat(event.time)
    except ValueError:
        return None
    return ts.timestamp() if ts.tzinfo is not None else None


def pick_listener(listeners: list[Listener], ev: SynFloodEvent) -> Listener | None:
    """The socket the kernel meant: same port, then exact address, then same-family wildcard."""
    on_port = [ls for ls in listeners if ls.port == ev.port]

    def rank(ls: Listener) -> int:
        if ev.addr is not None and ls.addr == ev.addr:
            return 0
        wildcard = ls.addr in ("0.0.0.0", "::")
        if ls.family == ev.family:
            return 1 if wildcard else 3
        return 2 if wildcard else 4

    return min(on_port, key=rank, default=None)


class Enricher:
    def __init__(
        self,
        proc: ProcReader,
        pods: PodResolver,
        *,
        top_n: int = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.proc = proc
        self.pods = pods
        self.top_n = top_n
        self.clock = clock
        self._kills: deque[tuple[float, str | None, str]] = deque()
        """(time, memcg path or None, event id) of OOM kills seen, for `kills_24h`."""
        self._kill_keys: set[str] = set()
        self._per_cgroup: Counter[str | None] = Counter()
        """Indexes of `_kills`: a revision is counted in O(1), not by a walk over a day of kills."""
        self._snapshots: OrderedDict[str, dict[str, Any]] = OrderedDict()
        """Event id -> the /proc context read for its first revision."""
        self._top_cache: tuple[float, list[dict[str, Any]]] | None = None

    def enrich(self, event: Event) -> Event:
        """A copy of `event` with live context, pod names (from pod logs) and advice."""
        ev = event.model_copy(deep=True)
        if isinstance(ev, OomKillEvent):
            self._oom_context(ev)
            if ev.kubernetes is not None:
                ev.kubernetes = self.pods.resolve(ev.kubernetes)
            self._names_done(ev)
        else:
            self._syn_context(ev)
        ev.advice = advise(ev, ev.context)
        return ev

    async def enrich_async(self, event: Event) -> Event:
        """`enrich`, with the Kubernetes API fallback for pod names when configured."""
        ev = event.model_copy(deep=True)
        if isinstance(ev, OomKillEvent):
            self._oom_context(ev)
            if ev.kubernetes is not None:
                ev.kubernetes = await self.pods.resolve_async(ev.kubernetes)
            self._names_done(ev)
            ev.advice = advise(ev, ev.context)
            return ev
        return self.enrich(ev)

    def wants_api_names(self, event: Event) -> bool:
        """An OOM event whose pod names the logs could not settle, with the API allowed."""
        return isinstance(event, OomKillEvent) and self.pods.wants_api(event.kubernetes)

    async def api_names(self, event: OomKillEvent) -> Kubernetes | None:
        """The event's pod identity with names from the Kubernetes API, or None when the API
        did not answer for this pod."""
        if event.kubernetes is None:
            return None
        k8s = await self.pods.resolve_async(event.kubernetes)
        return k8s if k8s.name_source == "kubernetes-api" else None

    def with_names(self, event: OomKillEvent, k8s: Kubernetes) -> OomKillEvent:
        """A copy of an already enriched event with these pod names, its `pod_source` and the
        advice that quotes them."""
        ev = event.model_copy(deep=True, update={"kubernetes": k8s})
        self._names_done(ev)
        ev.advice = advise(ev, ev.context)
        return ev

    def _guard(self, ctx: dict[str, Any], key: str, read: Callable[[], Any]) -> None:
        try:
            ctx[key] = read()
        except (OSError, ValueError) as exc:
            ctx.setdefault("enrich_errors", []).append(f"{key}: {exc}")

    def _oom_context(self, ev: OomKillEvent) -> None:
        ctx = ev.context
        ctx.update(copy.deepcopy(self._snapshot(ev.id)))
        if ev.kubernetes is None and ev.memcg is not None:
            path = ev.memcg.task_path or ev.memcg.oom_path
            ev.kubernetes = identify(path) if path else None
        ctx["kills_24h"] = self._count_kill(ev)

    def _snapshot(self, event_id: str | None) -> dict[str, Any]:
        """The live /proc context of this event: read for its first revision, then reused."""
        if event_id is not None and event_id in self._snapshots:
            self._snapshots.move_to_end(event_id)
            return self._snapshots[event_id]
        snap: dict[str, Any] = {}
        self._guard(snap, "meminfo", self.proc.meminfo)
        self._guard(snap, "psi", self.proc.psi_memory)
        self._guard(snap, "top_oom_score", self._top_shared)
        self._guard(snap, "oom_kill_total", self.proc.vmstat_oom_kill)
        self._guard(snap, "sysctls", self.proc.vm_sysctls)
        if event_id is not None:
            self._snapshots[event_id] = snap
            while len(self._snapshots) > SNAPSHOTS_KEPT:
                self._snapshots.popitem(last=False)
        return snap

    def _top_shared(self) -> list[dict[str, Any]]:
        """`_top`, scanned at most once per `TOP_TTL_S` (monotonic) for all events."""
        now = time.monotonic()
        if self._top_cache is not None and now - self._top_cache[0] < TOP_TTL_S:
            return self._top_cache[1]
        top = self._top()
        self._top_cache = (now, top)
        return top

    def _names_done(self, ev: OomKillEvent) -> None:
        source = describe_source(ev.kubernetes)
        if source is not None:
            ev.context["pod_source"] = source

    def _top(self) -> list[dict[str, Any]]:
        resolved: dict[str, Kubernetes] = {}
        out: list[dict[str, Any]] = []
        for p in self.proc.top_by_oom_score(self.top_n):
            self._name_process(p, resolved)
            out.append(p.model_dump(exclude={"version"}, exclude_none=True))
        return out

    def _name_process(self, p: ProcInfo, cache: dict[str, Kubernetes]) -> None:
        if p.pod_uid is None or p.pod:
            return
        key = f"{p.pod_uid}/{p.container_id}"
        if key not in cache:
            cache[key] = self.pods.resolve(
                Kubernetes(pod_uid=p.pod_uid, container_id=p.container_id)
            )
        k8s = cache[key]
        p.namespace, p.pod, p.container = k8s.namespace, k8s.pod, k8s.container

    def _count_kill(self, ev: OomKillEvent) -> int:
        """Kills in the last 24 h in the same memcg (all kills when the memcg is unknown)."""
        now = self.clock()
        while self._kills and self._kills[0][0] < now - DAY_S:
            _, gone_cgroup, gone_key = self._kills.popleft()
            self._kill_keys.discard(gone_key)
            self._per_cgroup[gone_cgroup] -= 1
        cgroup = ev.memcg.task_path or ev.memcg.oom_path if ev.memcg is not None else None
        key = ev.id or f"{ev.boot_id}:{ev.seq}:{ev.victim.pid}"
        if key not in self._kill_keys:
            at = _event_ts(ev)
            if at is None or at > now:
                at = now
            if at >= now - DAY_S:
                self._kills.append((at, cgroup, key))
                self._kill_keys.add(key)
                self._per_cgroup[cgroup] += 1
        return len(self._kills) if cgroup is None else self._per_cgroup[cgroup]

    def _syn_context(self, ev: SynFloodEvent) -> None:
        ctx = ev.context
        self._guard(ctx, "sysctls", self.proc.net_sysctls)
        self._guard(ctx, "counters", self._counters)
        try:
            listener = pick_listener(self.proc.listeners(), ev)
        except (OSError, ValueError) as exc:
            ctx.setdefault("enrich_errors", []).append(f"listener: {exc}")
            return
        if listener is not None:
            ctx["listener"] = listener.model_dump(exclude={"version"})

    def _counters(self) -> dict[str, int]:
        ext = self.proc.tcpext()
        return {k: ext[k] for k in COUNTERS if k in ext}
