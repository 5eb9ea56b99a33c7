"""The enricher must say what its first version said: the same `recurrence`, `kills_24h` and JSON
for any run of kills (revisions, restarts, forgotten kills, other cgroups, times out of order).

The first version is written out plainly here as the reference: its bookkeeping of remembered
kills (newest `max_per_key` per cgroup or pod, `max_remembered` in all), `recurrence` over a list
of them (tests/recurrence_reference.py), the 24 h count, and the copy made field by field."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernbot.agent.enrich import DAY_S, Enricher
from kernbot.agent.pods import PodResolver, describe_source
from kernbot.agent.proc import ProcReader
from kernbot.core.cgroup_identity import identify
from kernbot.core.context import Recurrence
from kernbot.core.events import Kubernetes, Memcg, OomKillEvent, Victim
from kernbot.core.oom.recurrence import WINDOW_S, Kill, as_kill
from recurrence_reference import plain_recurrence

T = TypeVar("T")
SNAPSHOT = Path(__file__).resolve().parents[1] / "fixtures" / "proc" / "snapshot"
UID = "0f1c2d3e-1111-2222-3333-444455556666"
CID = "3b8f5a1c9d2e4f60718293a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e"
NOW = 1_750_000_000.0
PATHS = [
    f"/kubepods/burstable/pod{UID}/{CID}",  # names from the pod logs below
    f"/kubepods/burstable/pod{UID}/{'a' * 64}",  # the same pod, another container
    "/kubepods/besteffort/pod7a6b5c4d-0000-1111-2222-333344445555/x",  # no pod logs
    "/lxc/39004",
    "/system.slice/web.service",
    None,  # a global OOM
]


def event_ts(ev: OomKillEvent) -> float | None:
    if not ev.time:
        return None
    ts = datetime.fromisoformat(ev.time)
    return ts.timestamp() if ts.tzinfo is not None else None


class FirstVersion:
    """The enricher's kill bookkeeping as first written: an ordered dict of kills per key, the
    oldest forgotten first, and a list of the kills of the last 24 h."""

    def __init__(self, clock: list[float], max_per_key: int, max_remembered: int) -> None:
        self.clock = clock
        self.max_per_key = max_per_key
        self.max_remembered = max_remembered
        self.limits: OrderedDict[str, str] = OrderedDict()
        self.by_key: dict[str, OrderedDict[str, Kill]] = {}
        self.capped: set[str] = set()
        self.kills: list[tuple[float, str | None, str]] = []

    def remember(self, event_id: str, kill: Kill) -> None:
        old_key = self.limits.pop(event_id, None)
        if old_key is not None and old_key != kill.key:
            self.forget(old_key, event_id)
        self.limits[event_id] = kill.key
        same = self.by_key.setdefault(kill.key, OrderedDict())
        same[event_id] = kill
        while len(same) > self.max_per_key:
            gone, _ = same.popitem(last=False)
            del self.limits[gone]
            self.capped.add(kill.key)
        while len(self.limits) > self.max_remembered:
            gone, key = self.limits.popitem(last=False)
            self.forget(key, gone)

    def forget(self, key: str, event_id: str) -> None:
        same = self.by_key.get(key)
        if same is not None:
            same.pop(event_id, None)
            if not same:
                del self.by_key[key]
                self.capped.discard(key)

    def history(self, events: list[OomKillEvent]) -> None:
        for ev in events:
            at = event_ts(ev)
            kill = as_kill(ev, at) if at is not None else None
            if kill is not None and ev.id:
                self.remember(ev.id, kill)

    def recurrence(self, ev: OomKillEvent, at: float | None) -> Recurrence | None:
        now = self.clock[0]
        kill = as_kill(ev, at if at is not None and at <= now else now)
        if kill is None:
            return None
        self.remember(ev.id or f"{ev.boot_id}:{ev.seq}:{ev.victim.pid}", kill)
        known = list(self.by_key[kill.key].values())
        return plain_recurrence(kill, known, kill.key in self.capped)

    def count(self, ev: OomKillEvent, at: float | None) -> int:
        now = self.clock[0]
        while self.kills and self.kills[0][0] < now - DAY_S:
            del self.kills[0]
        cgroup = ev.memcg.task_path or ev.memcg.oom_path if ev.memcg is not None else None
        key = ev.id or f"{ev.boot_id}:{ev.seq}:{ev.victim.pid}"
        if key not in {k for _, _, k in self.kills}:
            when = now if at is None or at > now else at
            if when >= now - DAY_S:
                self.kills.append((when, cgroup, key))
        return sum(1 for _, c, _ in self.kills if cgroup is None or c == cgroup)

    def enrich(self, snapshots: Enricher, event: OomKillEvent) -> OomKillEvent:
        """The copy as first made: copied, then each field set in turn."""
        ctx = event.context
        own = ctx.model_copy(update={"enrich_errors": list(ctx.enrich_errors)})
        ev = event.model_copy(update={"context": own})
        snap = snapshots._snapshot(ev.id)
        own.meminfo = snap.meminfo
        own.psi = snap.psi
        own.top_oom_score = list(snap.top) if snap.top is not None else None
        own.oom_kill_total = snap.oom_kill_total
        own.sysctls = dict(snap.sysctls)
        own.enrich_errors.extend(snap.errors)
        if ev.kubernetes is None and ev.memcg is not None:
            path = ev.memcg.task_path or ev.memcg.oom_path
            ev.kubernetes = identify(path) if path else None
        at = event_ts(ev)
        own.kills_24h = self.count(ev, at)
        own.recurrence = self.recurrence(ev, at)
        if ev.kubernetes is not None:
            ev.kubernetes = snapshots.pods.resolve(ev.kubernetes)
        source = describe_source(ev.kubernetes)
        if source is not None:
            own.pod_source = source
        return ev


@pytest.fixture(scope="module")
def pods(tmp_path_factory: pytest.TempPathFactory) -> PodResolver:
    base = tmp_path_factory.mktemp("kubelet")
    pod_dir = base / "pods" / f"shop_web-7d9f_{UID}"
    (pod_dir / "app").mkdir(parents=True)
    (pod_dir / "app" / "0.log").write_text("{}\n")
    (base / "containers").mkdir()
    (base / "containers" / f"web-7d9f_shop_app-{CID}.log").symlink_to(pod_dir / "app/0.log")
    return PodResolver(base / "pods")


def _stamp(offset: float) -> str:
    return datetime.fromtimestamp(NOW + offset, UTC).isoformat()


@st.composite
def kill_events(draw: st.DrawFn) -> st.SearchStrategy[OomKillEvent]:
    """A strategy for events of a few cgroups at a few levels (drawn once per example), so
    that patterns are common."""

    def some(values: Sequence[T]) -> st.SearchStrategy[T]:
        return st.sampled_from(draw(st.lists(st.sampled_from(values), min_size=1, max_size=2)))

    return st.builds(
        lambda eid, path, usage, limit, time, pid, k8s: OomKillEvent(
            id=eid,
            time=time,
            boot_id="b",
            seq=pid,
            constraint="CONSTRAINT_MEMCG" if path else "CONSTRAINT_NONE",
            global_oom=path is None,
            victim=Victim(pid=pid, comm="worker"),
            memcg=None
            if path is None
            else Memcg(oom_path=path, task_path=path, usage_kb=usage, limit_kb=limit),
            kubernetes=Kubernetes(pod_uid=UID, container="app") if k8s and path else None,
        ),
        eid=st.sampled_from([f"k{i}" for i in range(12)] + [None]),
        path=some(PATHS),
        usage=some([None, 0, 500_000, 510_000, 524_288, 600_000]),
        limit=some([None, 524_288, 1_048_576]),
        time=st.one_of(
            st.none(),
            st.sampled_from([-WINDOW_S - 5, -DAY_S - 5, -3600, -60, -1.5, -0.5, 0, 0.25, 30]).map(
                _stamp
            ),
        ),
        pid=st.integers(1, 4),
        k8s=st.booleans(),
    )


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events=kill_events(),
    data=st.data(),
    max_per_key=st.sampled_from([1, 3, 4, 6, 100]),
    max_remembered=st.sampled_from([2, 5, 10, 2000]),
)
def test_the_enricher_says_what_its_first_version_said(
    pods: PodResolver,
    events: st.SearchStrategy[OomKillEvent],
    data: st.DataObject,
    max_per_key: int,
    max_remembered: int,
) -> None:
    history = data.draw(st.lists(events, max_size=6))
    steps = data.draw(
        st.lists(st.tuples(events, st.sampled_from([0.0, 0.5, 1.0, 1.0, 61.0, DAY_S])), max_size=60)
    )
    clock = [NOW]
    new = Enricher(
        ProcReader(SNAPSHOT),
        pods,
        top_n=3,
        clock=lambda: clock[0],
        max_per_key=max_per_key,
        max_remembered=max_remembered,
    )
    snapshots = Enricher(ProcReader(SNAPSHOT), pods, top_n=3, clock=lambda: clock[0])
    first = FirstVersion(clock, max_per_key, max_remembered)
    new.remember(history)
    first.history(history)
    for event, step in steps:
        clock[0] += step
        got, want = new.enrich(event), first.enrich(snapshots, event)
        assert got.context.recurrence == want.context.recurrence
        assert got.context.kills_24h == want.context.kills_24h
        assert got.model_dump_json() == want.model_dump_json()
        assert got.model_fields_set == want.model_fields_set
        assert got.context.model_fields_set == want.context.model_fields_set


def test_a_loop_of_kills_says_what_the_first_version_said(pods: PodResolver) -> None:
    """The agent's case with the real limits: one cgroup killed every half second, more kills
    than are remembered, each kill revised once."""
    clock = [NOW]
    new = Enricher(ProcReader(SNAPSHOT), pods, top_n=3, clock=lambda: clock[0])
    snapshots = Enricher(ProcReader(SNAPSHOT), pods, top_n=3, clock=lambda: clock[0])
    first = FirstVersion(clock, new.max_per_key, new.max_remembered)
    capped = None
    for i in range(new.max_per_key + 30):
        clock[0] += 0.5
        ev = OomKillEvent(
            id=f"k{i}",
            time=_stamp(clock[0] - NOW - 0.1),
            constraint="CONSTRAINT_MEMCG",
            victim=Victim(pid=1000 + i, comm="php-fpm"),
            memcg=Memcg(oom_path="/lxc/39004", usage_kb=524_288 - i % 7, limit_kb=524_288),
        )
        for revision in (ev, ev.model_copy(update={"revision": 1})):
            got, want = new.enrich(revision), first.enrich(snapshots, revision)
            assert got.model_dump_json() == want.model_dump_json()
            capped = got.context.recurrence
    assert capped is not None and capped.kills == new.max_per_key and "+ kills" in capped.text
