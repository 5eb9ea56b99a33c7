"""Enricher: what a senior SRE would look up on the host right after the kernel's message.

For an OOM kill: memory and PSI now, who has the highest oom_score now ("who is next"), the vm
sysctls that shaped the kill, pod names for the killed container (from the kubelet's logs; the
Kubernetes API is a later pipeline stage), and how many kills this cgroup had in the last 24
hours. For a SYN flood: the listener (owner, queues, half-open count), the TcpExt counters and
the net sysctls. Advice is the pipeline's next stage, computed once over all of it.

Best effort by design: a /proc read that fails is noted in `context.enrich_errors` and the
event goes out anyway. The event passed in is never modified; a copy is returned.

Cost (issue 11): the detector hands out a new revision of a report as lines arrive, several per
OOM event, and a node in an OOM loop prints a hundred reports a second. The /proc snapshot is
therefore read once per event (its first revision, the one closest to the kill) and reused for
the event's later revisions, and the whole-process `top_oom_score` scan is shared by the events
of one `TOP_TTL_S` window; reading all of /proc per revision cost most of a core. The rest of the
snapshot (meminfo, PSI, vmstat, sysctls) is shared by the events of one `SNAPSHOT_TTL_S` of the
clock as well: a hundred kills a second read it once. The copy handed back shares the event's
report fields (lines, tasks: the detector never touches an event it handed out) and gets its
own context, whose fields enrichment sets rather than changes; a deep copy of the whole report
cost more than the reads. The /proc models of a snapshot (memory, PSI, the processes) are shared
by the events that got it, read-only like the report's fields. Recurrence compares a kill with
the newest `MAX_PER_KEY` kills of the same cgroup or pod only, through their times grouped by
level (`KillTimes`, kept as kills are remembered and forgotten): walking all of them for every
event was the largest part of the enrichment.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar, overload

from kernbot.agent.pods import PodResolver, describe_source
from kernbot.agent.proc import ProcReader
from kernbot.core.cgroup_identity import identify
from kernbot.core.context import WHO_IS_NEXT, HostMemory, Listener, ProcInfo, Psi, Recurrence
from kernbot.core.events import Event, Kubernetes, OomKillEvent, OomRiskEvent, SynFloodEvent
from kernbot.core.oom.recurrence import Kill, KillTimes, as_kill
from kernbot.core.syn.episodes import COUNTERS

DAY_S = 24 * 3600.0
MAX_REMEMBERED = 2000
"""Kills of cgroup/pod limits kept for `recurrence` (oldest forgotten first)."""
MAX_PER_KEY = 100
"""Kills of one cgroup or pod kept for `recurrence`: the pattern (its count, interval, since)
is measured over these; a node in an OOM loop kills one cgroup a hundred times a second."""
T = TypeVar("T")
TOP_TTL_S = 1.0
"""Events within this many seconds share one scan of every process's oom_score."""
SNAPSHOT_TTL_S = 1.0
"""Events within this many seconds (of the enricher's clock) share one read of meminfo, PSI,
vmstat and the vm sysctls."""
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


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What /proc said for one event's first revision; later revisions get copies of it."""

    meminfo: HostMemory | None
    psi: Psi | None
    top: list[ProcInfo] | None
    oom_kill_total: int | None
    sysctls: dict[str, int]
    errors: list[str] = field(default_factory=list)


class Enricher:
    def __init__(
        self,
        proc: ProcReader,
        pods: PodResolver,
        *,
        top_n: int = WHO_IS_NEXT,
        clock: Callable[[], float] = time.time,
        max_per_key: int = MAX_PER_KEY,
        max_remembered: int = MAX_REMEMBERED,
    ) -> None:
        self.proc = proc
        self.pods = pods
        self.top_n = top_n
        self.clock = clock
        self.max_per_key = max_per_key
        self.max_remembered = max_remembered
        self._kills: deque[tuple[float, str | None, str]] = deque()
        """(time, memcg path or None, event id) of OOM kills seen, for `kills_24h`."""
        self._limits: OrderedDict[str, str] = OrderedDict()
        """Event id -> the key of its kill of a cgroup or pod limit, oldest first (bounded)."""
        self._by_key: dict[str, OrderedDict[str, Kill]] = {}
        """Key (`kill_key`) -> event id -> the kill, for `recurrence` (bounded per key)."""
        self._times: dict[str, KillTimes] = {}
        """Key -> the times of `_by_key[key]`'s kills by level: what `recurrence` measures."""
        self._capped: set[str] = set()
        """Keys that lost kills to `max_per_key`: their count is a lower bound."""
        self._kill_keys: set[str] = set()
        self._per_cgroup: Counter[str | None] = Counter()
        """Indexes of `_kills`: a revision is counted in O(1), not by a walk over a day of kills."""
        self._snapshots: OrderedDict[str, _Snapshot] = OrderedDict()
        """Event id -> the /proc context read for its first revision."""
        self._top_cache: tuple[float, list[ProcInfo]] | None = None
        self._shared: tuple[float, _Snapshot] | None = None
        """(clock, snapshot) of the last /proc read, for the events of one `SNAPSHOT_TTL_S`."""

    def remember(self, events: list[OomKillEvent]) -> None:
        """Kills from the agent's history (after a restart), so a pattern spans restarts."""
        for ev in events:
            at = _event_ts(ev)
            kill = as_kill(ev, at) if at is not None else None
            if kill is not None and ev.id:
                self._remember(ev.id, kill)

    def _remember(self, event_id: str, kill: Kill) -> None:
        old_key = self._limits.pop(event_id, None)
        if old_key is not None and old_key != kill.key:
            self._forget(old_key, event_id)
        self._limits[event_id] = kill.key
        same = self._by_key.get(kill.key)
        if same is None:
            same = self._by_key[kill.key] = OrderedDict()
            times = self._times[kill.key] = KillTimes()
        else:
            times = self._times[kill.key]
            replaced = same.get(event_id)
            if replaced is not None:
                times.discard(replaced)
        same[event_id] = kill
        times.add(kill)
        while len(same) > self.max_per_key:
            gone, gone_kill = same.popitem(last=False)
            times.discard(gone_kill)
            del self._limits[gone]
            self._capped.add(kill.key)
        while len(self._limits) > self.max_remembered:
            gone, key = self._limits.popitem(last=False)
            self._forget(key, gone)

    def _forget(self, key: str, event_id: str) -> None:
        same = self._by_key.get(key)
        if same is not None:
            gone = same.pop(event_id, None)
            if gone is not None:
                self._times[key].discard(gone)
            if not same:
                del self._by_key[key]
                del self._times[key]
                self._capped.discard(key)

    @overload
    def enrich(self, event: OomKillEvent) -> OomKillEvent: ...
    @overload
    def enrich(self, event: SynFloodEvent) -> SynFloodEvent: ...
    @overload
    def enrich(self, event: OomRiskEvent) -> OomRiskEvent: ...
    @overload
    def enrich(self, event: Event) -> Event: ...
    def enrich(self, event: Event) -> Event:
        """A copy of `event` with live context and pod names (from pod logs)."""
        if isinstance(event, OomKillEvent):
            return self._enrich_oom(event)
        ev: Event
        if isinstance(event, SynFloodEvent):
            # fields of the context are set, not changed in place; its error list is extended
            ctx = event.context
            own = ctx.model_copy(update={"enrich_errors": list(ctx.enrich_errors)})
            ev = event.model_copy(update={"context": own})
            self._syn_context(ev)
        else:
            ev = event.model_copy()
            if ev.kubernetes is not None:  # oom_risk: pod names as for kills
                ev.kubernetes = self.pods.resolve(ev.kubernetes)
        return ev

    def with_names(self, event: OomKillEvent, k8s: Kubernetes) -> OomKillEvent:
        """A copy of an already enriched event with these pod names and its `pod_source`."""
        ev = event.model_copy(deep=True, update={"kubernetes": k8s})
        self._names_done(ev)
        return ev

    @staticmethod
    def _guard(errors: list[str], key: str, read: Callable[[], T]) -> T | None:
        """`read()`, or None with `key: error` noted when the host would not tell."""
        try:
            return read()
        except (OSError, ValueError) as exc:
            errors.append(f"{key}: {exc}")
            return None

    def _enrich_oom(self, event: OomKillEvent) -> OomKillEvent:
        """The copy of an OOM kill: its context and pod names worked out first, then set in one
        copy of the context and one of the event (issue 11: a pydantic `__setattr__` per field
        of a copy cost a fifth of the enrichment). The fields set are those set one by one
        before, so `model_fields_set` is unchanged."""
        snap = self._snapshot(event.id)
        update: dict[str, object] = {}
        k8s = event.kubernetes
        if k8s is None and event.memcg is not None:
            path = event.memcg.task_path or event.memcg.oom_path
            k8s = update["kubernetes"] = identify(path) if path else None
        # `kill_key` finds the same identity from the memcg when the event has none
        at = _event_ts(event)
        kills_24h = self._count_kill(event, at)
        again = self._recurrence(event, at)
        if k8s is not None:
            k8s = update["kubernetes"] = self.pods.resolve(k8s)
        ctx = event.context
        # The snapshot's models are shared, never changed once read (`_top` names a process
        # before the snapshot is kept; `with_names` copies deeply): a copy of each for every
        # event was a third of the enrichment (issue 11).
        fields: dict[str, object] = {
            "enrich_errors": [*ctx.enrich_errors, *snap.errors],
            "meminfo": snap.meminfo,
            "psi": snap.psi,
            "top_oom_score": list(snap.top) if snap.top is not None else None,
            "oom_kill_total": snap.oom_kill_total,
            "sysctls": dict(snap.sysctls),
            "kills_24h": kills_24h,
            "recurrence": again,
        }
        source = describe_source(k8s)
        if source is not None:
            fields["pod_source"] = source
        update["context"] = ctx.model_copy(update=fields)
        return event.model_copy(update=update)

    def _recurrence(self, ev: OomKillEvent, at: float | None) -> Recurrence | None:
        now = self.clock()
        kill = as_kill(ev, at if at is not None and at <= now else now)
        if kill is None:
            return None
        event_id = ev.id or f"{ev.boot_id}:{ev.seq}:{ev.victim.pid}"
        self._remember(event_id, kill)  # first: the newest MAX_PER_KEY include this one
        # `recurrence` over the remembered kills of this key (this one among them: it counts it
        # once either way), from their times by level rather than a walk over each kill.
        return self._times[kill.key].recurrence_of(kill, more=kill.key in self._capped)

    def _snapshot(self, event_id: str | None) -> _Snapshot:
        """The live /proc context of this event: read for its first revision, then reused."""
        if event_id is not None and event_id in self._snapshots:
            self._snapshots.move_to_end(event_id)
            return self._snapshots[event_id]
        now = self.clock()
        shared = self._shared
        if shared is not None and abs(now - shared[0]) < SNAPSHOT_TTL_S:
            snap = shared[1]
        else:
            snap = self._read_snapshot()
            self._shared = (now, snap)
        if event_id is not None:
            self._snapshots[event_id] = snap
            while len(self._snapshots) > SNAPSHOTS_KEPT:
                self._snapshots.popitem(last=False)
        return snap

    def _read_snapshot(self) -> _Snapshot:
        errors: list[str] = []
        meminfo = self._guard(errors, "meminfo", self.proc.meminfo)
        return _Snapshot(
            meminfo=HostMemory.model_validate(meminfo) if meminfo is not None else None,
            psi=self._guard(errors, "psi", self.proc.psi_memory),
            top=self._guard(errors, "top_oom_score", self._top_shared),
            oom_kill_total=self._guard(errors, "oom_kill_total", self.proc.vmstat_oom_kill),
            sysctls=self._guard(errors, "sysctls", self.proc.vm_sysctls) or {},
            errors=errors,
        )

    def _top_shared(self) -> list[ProcInfo]:
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
            ev.context.pod_source = source

    def _top(self) -> list[ProcInfo]:
        resolved: dict[str, Kubernetes] = {}
        out: list[ProcInfo] = []
        for p in self.proc.top_by_oom_score(self.top_n):
            self._name_process(p, resolved)
            out.append(p)
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

    def _count_kill(self, ev: OomKillEvent, at: float | None) -> int:
        """Kills in the last 24 h in the same memcg (all kills when the memcg is unknown); `at`
        is the event's time."""
        now = self.clock()
        while self._kills and self._kills[0][0] < now - DAY_S:
            _, gone_cgroup, gone_key = self._kills.popleft()
            self._kill_keys.discard(gone_key)
            self._per_cgroup[gone_cgroup] -= 1
        cgroup = ev.memcg.task_path or ev.memcg.oom_path if ev.memcg is not None else None
        key = ev.id or f"{ev.boot_id}:{ev.seq}:{ev.victim.pid}"
        if key not in self._kill_keys:
            when = now if at is None or at > now else at
            if when >= now - DAY_S:
                self._kills.append((when, cgroup, key))
                self._kill_keys.add(key)
                self._per_cgroup[cgroup] += 1
        return len(self._kills) if cgroup is None else self._per_cgroup[cgroup]

    def _syn_context(self, ev: SynFloodEvent) -> None:
        ctx, errors = ev.context, ev.context.enrich_errors
        ctx.sysctls = self._guard(errors, "sysctls", self.proc.net_sysctls) or {}
        ctx.counters = self._guard(errors, "counters", self._counters) or {}
        listeners = self._guard(errors, "listener", self.proc.listeners)
        if listeners is not None:
            ctx.listener = pick_listener(listeners, ev)

    def _counters(self) -> dict[str, int]:
        ext = self.proc.tcpext()
        return {k: ext[k] for k in COUNTERS if k in ext}
