"""Risk episodes on a fake clock: thresholds, hysteresis, one id per episode, kills, restarts."""

from __future__ import annotations

import json

import pytest

from kernbot.core.advice import advise
from kernbot.core.events import EventEnvelope, Memcg, OomKillEvent, OomRiskEvent
from kernbot.core.risk import MemSample, RiskSettings, RiskTracker

T0 = 1_700_000_000.0
MIB = 1024
LIMIT = 128 * MIB
POD = (
    "/kubepods/burstable/pod0f2a7c7e-3b1d-4c55-9d0a-6f1e2b3c4d5e/"
    "8f1c9e1b7a3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddee"
)


def sample(ws_kb: float, *, cgroup: str = "/test", limit: int = LIMIT, psi: float | None = None):
    return MemSample(
        cgroup=cgroup,
        usage_kb=int(ws_kb) + 1000,
        working_set_kb=int(ws_kb),
        limit_kb=limit,
        psi_full=psi,
        psi_some=psi,
        version=1,
    )


def tracker(**kw: float) -> RiskTracker:
    return RiskTracker(host="node-1", boot_id="b00t", settings=RiskSettings(**kw))


def run(tr: RiskTracker, values: list[float], step: float = 5.0, **kw) -> list[OomRiskEvent]:
    out = []
    for i, ws in enumerate(values):
        ev = tr.observe(sample(ws, **kw), T0 + i * step)
        if ev is not None:
            out.append(ev)
    return out


def test_growth_warns_with_an_eta_close_to_the_truth() -> None:
    """1 MiB/s toward 128 MiB: a warning with the time that really remained (within 30 %)."""
    tr = tracker()
    values = [float(i * 5 * MIB) for i in range(26)]  # 0 .. 125 MiB in 125 s
    events = run(tr, values)
    start = events[0]
    assert start.state == "start" and start.revision == 0
    assert "eta" in start.reasons
    i = values.index(start.working_set_kb)
    remaining = (LIMIT - values[i]) / MIB  # seconds, at 1 MiB/s
    assert start.eta_s == pytest.approx(remaining, rel=0.3)
    assert start.growth_kb_per_s == pytest.approx(1024, rel=0.05)
    # the limit is 128 MiB, the ETA floor is 50 %: nothing before 64 MiB
    assert start.working_set_kb >= LIMIT * 0.5
    assert all(e.id == start.id for e in events)
    assert [e.revision for e in events] == list(range(len(events)))


def test_steady_at_75_percent_never_warns() -> None:
    tr = tracker()
    values = [LIMIT * 0.75 + (i % 3) * 200 for i in range(60)]  # 5 minutes, jitter of 400 kB
    assert run(tr, values) == []


def test_sawtooth_under_90_percent_never_warns() -> None:
    tr = tracker()
    values = [LIMIT * (0.55 + 0.33 * ((i * 5 % 40) / 40)) for i in range(120)]
    assert run(tr, values) == []


def test_percent_threshold_opens_and_hysteresis_ends() -> None:
    tr = tracker(end_after_s=60, update_min_s=30)
    hi = [LIMIT * 0.92] * 10
    dip = [LIMIT * 0.85] * 30  # below 90 % but not below 80 %: still the same episode
    low = [LIMIT * 0.5] * 20
    events = run(tr, hi + dip + low)
    states = [e.state for e in events]
    assert states[0] == "start" and states[-1] == "ended"
    assert states.count("start") == 1
    ended = events[-1]
    # ended once calm for 60 s: 12 samples of 5 s after the first low one
    assert ended.time is not None and ended.ended is not None
    assert len({e.id for e in events}) == 1


def test_brief_dips_below_80_do_not_end_the_episode() -> None:
    tr = tracker(end_after_s=60)
    seq = []
    for _ in range(6):
        seq += [LIMIT * 0.93] * 4 + [LIMIT * 0.7] * 3  # dips of 15 s
    events = run(tr, seq)
    assert [e.state for e in events].count("start") == 1
    assert "ended" not in [e.state for e in events]


def test_psi_alone_opens_an_episode() -> None:
    tr = tracker()
    ev = tr.observe(sample(LIMIT * 0.6, psi=25.0), T0)
    assert ev is not None and ev.reasons == ["psi"]
    assert ev.psi is not None and ev.psi.full_avg10 == 25.0


def test_ongoing_updates_are_rate_limited() -> None:
    tr = tracker(update_min_s=30)
    # 1 sample/s climbing 90 -> 99 %: one start, then at most one update per 30 s
    values = [LIMIT * (0.90 + 0.0009 * i) for i in range(100)]
    events = run(tr, values, step=1.0)
    assert events[0].state == "start"
    assert 1 <= len(events) <= 1 + 100 // 30


def test_kill_ends_the_episode_and_names_it_on_the_kill() -> None:
    tr = tracker()
    start = tr.observe(sample(LIMIT * 0.95, cgroup=POD), T0)
    assert start is not None
    assert start.kubernetes is not None and start.kubernetes.pod_uid.startswith("0f2a7c7e")
    assert start.kubernetes.qos == "burstable"
    kill = OomKillEvent(
        id="b00t:42", constraint="CONSTRAINT_MEMCG", memcg=Memcg(oom_path=POD, task_path=POD)
    )
    killed = tr.on_kill(kill, T0 + 240)
    assert killed is not None
    assert killed.state == "killed" and killed.kill_id == "b00t:42"
    assert killed.id == start.id and killed.revision == start.revision + 1
    assert kill.risk_id == start.id and kill.risk_started == start.started
    # the restarted container, still at the limit, is not warned again until calm once
    assert tr.observe(sample(LIMIT * 0.95, cgroup=POD), T0 + 250) is None
    assert tr.observe(sample(LIMIT * 0.10, cgroup=POD), T0 + 255) is None
    again = tr.observe(sample(LIMIT * 0.95, cgroup=POD), T0 + 260)
    assert again is not None and again.state == "start" and again.id != start.id


def test_kill_of_the_pod_limit_ends_the_container_episode() -> None:
    tr = tracker()
    tr.observe(sample(LIMIT * 0.95, cgroup=POD), T0)
    pod = POD.rsplit("/", 1)[0]
    kill = OomKillEvent(id="k", memcg=Memcg(oom_path=pod, task_path=POD))
    killed = tr.on_kill(kill, T0 + 1)
    assert killed is not None and killed.cgroup == POD


def test_global_oom_ends_the_host_episode_only() -> None:
    tr = tracker()
    tr.observe(sample(LIMIT * 0.95, cgroup="/test"), T0)
    host = tr.observe(sample(LIMIT * 0.97, cgroup="/", limit=LIMIT), T0)
    assert host is not None
    kill = OomKillEvent(id="g", constraint="CONSTRAINT_NONE", global_oom=True)
    killed = tr.on_kill(kill, T0 + 1)
    assert killed is not None and killed.cgroup == "/"
    assert [e.cgroup for e in tr.open_episodes()] == ["/test"]


def test_unrelated_kill_is_not_claimed() -> None:
    tr = tracker()
    tr.observe(sample(LIMIT * 0.95, cgroup="/a"), T0)
    kill = OomKillEvent(id="k", memcg=Memcg(oom_path="/b", task_path="/b"))
    assert tr.on_kill(kill, T0 + 1) is None
    assert kill.risk_id is None


def test_restart_continues_the_episode_without_a_new_start() -> None:
    tr = tracker()
    start = tr.observe(sample(LIMIT * 0.95), T0)
    assert start is not None
    state = json.loads(json.dumps(tr.export_state()))
    again = tracker()
    again.restore(state, T0 + 10)
    assert again.observe(sample(LIMIT * 0.95), T0 + 15) is None
    late = [again.observe(sample(LIMIT * 0.99), T0 + 15 + 40 * k) for k in range(1, 3)]
    ongoing = [e for e in late if e is not None]
    assert ongoing and all(e.id == start.id and e.state == "ongoing" for e in ongoing)
    assert ongoing[0].revision == start.revision + 1


def test_restore_from_another_boot_is_dropped() -> None:
    tr = tracker()
    tr.observe(sample(LIMIT * 0.95), T0)
    other = RiskTracker(host="node-1", boot_id="other", settings=RiskSettings())
    other.restore(tr.export_state(), T0)
    assert other.open_episodes() == []


def test_vanished_cgroup_ends_its_episode() -> None:
    tr = tracker()
    tr.observe(sample(LIMIT * 0.95), T0)
    out = tr.vanished(set(), T0 + 5)
    assert [e.state for e in out] == ["ended"]
    assert not tr.is_hot("/test")


def test_event_round_trips_through_the_envelope_and_gets_advice() -> None:
    tr = tracker()
    for i in range(12):
        ev = tr.observe(
            sample(LIMIT * 0.6 + i * 5 * MIB, cgroup="/system.slice/x.service"), T0 + i * 5
        )
    assert ev is not None or tr.open_episodes()
    ev = tr.open_episodes()[0]
    wire = EventEnvelope.model_validate({"event": ev.model_dump(mode="json")}).event
    assert isinstance(wire, OomRiskEvent)
    assert wire.container is not None and wire.container.unit == "x.service"
    tips = advise(wire)
    assert tips and tips[0].title.startswith("Raise the limit")
    assert any("systemctl set-property x.service MemoryMax=" in c for c in tips[0].commands)


def test_a_pod_and_its_only_container_share_one_episode() -> None:
    """Same limit on the pod and its container: one warning, for the container."""
    tr = tracker()
    pod = POD.rsplit("/", 1)[0]
    pair = [sample(LIMIT * 0.95, cgroup=pod), sample(LIMIT * 0.94, cgroup=POD)]  # pod first
    opened = tr.observe_all(pair, T0) + tr.observe_all(pair, T0 + 5)
    assert [e.cgroup for e in opened] == [POD]


def test_a_pod_with_a_larger_limit_is_its_own_episode() -> None:
    tr = tracker()
    pod = POD.rsplit("/", 1)[0]
    tr.observe(sample(LIMIT * 0.95, cgroup=POD), T0)
    ev = tr.observe(sample(LIMIT * 1.9, cgroup=pod, limit=2 * LIMIT), T0)
    assert ev is not None and ev.cgroup == pod


def test_warm_up_then_flat_is_not_growth() -> None:
    """70 s climbing to 70 % (a service warming up), then flat: no ETA warning while the
    climb is still in the fitted window."""
    tr = tracker()
    climb = [LIMIT * 0.70 * min(1.0, i * 5 / 70) for i in range(60)]
    assert run(tr, climb) == []


def test_a_kill_read_after_its_cgroup_vanished_still_ends_as_killed() -> None:
    tr = tracker()
    start = tr.observe(sample(LIMIT * 0.97, cgroup=POD), T0)
    assert start is not None
    (ended,) = tr.vanished(set(), T0 + 2)  # the killed container's cgroup is gone already
    assert ended.state == "ended"
    kill = OomKillEvent(id="k", memcg=Memcg(oom_path=POD))
    killed = tr.on_kill(kill, T0 + 4)
    assert killed is not None and killed.state == "killed" and killed.id == start.id
    assert killed.revision == ended.revision + 1 and kill.risk_id == start.id
    late = OomKillEvent(id="k2", memcg=Memcg(oom_path=POD))
    assert tr.on_kill(late, T0 + 400) is None  # once, and not long after
