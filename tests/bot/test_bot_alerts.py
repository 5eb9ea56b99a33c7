"""Alert rules end to end through the store and the outbox: storm control, fleet bursts, SYN
episodes, history, silences and routing (on SQLite and PostgreSQL)."""

from __future__ import annotations

from bot_harness import FakeClock, Pipeline, RecordingNotifier, make_pipeline

from fakes.fake_fleet import sample_oom, sample_syn
from kernbot.bot.alerts import parse_routes
from kernbot.bot.store import Database
from kernbot.core.events import Kubernetes, OomKillEvent, Victim
from kernbot.core.wire import EventBatch


def kill(n: int, host: str = "k8s-node-17", comm: str = "java") -> OomKillEvent:
    return sample_oom(
        id=f"boot:{n}", host=host, kubernetes=None, victim=Victim(pid=1000 + n, comm=comm)
    )


async def send(p: Pipeline, *events: OomKillEvent | object) -> None:
    for event in events:
        await p.ingestor.events(EventBatch(host="x", events=[event]))  # type: ignore[list-item]


async def test_storm_repeats_go_into_the_thread_and_count(pipeline: Pipeline) -> None:
    await send(pipeline, kill(1))
    await pipeline.drain()
    for n in range(2, 6):
        pipeline.clock.advance(30)
        await send(pipeline, kill(n))
    await pipeline.drain()
    notifier = pipeline.notifier
    [(channel, _msg, _, parent)] = notifier.top_level()
    assert channel == "C0ALERTS"
    replies = notifier.replies()
    assert len(replies) == 4 and all(r[2] == parent for r in replies)
    assert "5 in this group" in replies[-1][1].text
    # the parent's counter was updated in place; the last update shows all five
    assert notifier.updates and notifier.updates[-1][0] == parent
    assert "5" in str(notifier.updates[-1][1].blocks)


async def test_storm_window_ends_then_a_new_alert(pipeline: Pipeline) -> None:
    await send(pipeline, kill(1))
    pipeline.clock.advance(601)
    await send(pipeline, kill(2))
    await pipeline.drain()
    assert len(pipeline.notifier.top_level()) == 2


async def test_different_victims_or_hosts_are_separate_alerts(pipeline: Pipeline) -> None:
    await send(pipeline, kill(1), kill(2, comm="postgres"), kill(3, host="other-host"))
    await pipeline.drain()
    assert len(pipeline.notifier.top_level()) == 3
    assert pipeline.notifier.replies() == []


async def test_same_pod_groups_even_when_comm_differs(pipeline: Pipeline) -> None:
    pod = Kubernetes(namespace="payments", pod="ledger-1")
    a = sample_oom(id="b:1", kubernetes=pod, victim=Victim(comm="java"))
    b = sample_oom(id="b:2", kubernetes=pod, victim=Victim(comm="jcmd"))
    await send(pipeline, a, b)
    await pipeline.drain()
    assert len(pipeline.notifier.top_level()) == 1
    assert len(pipeline.notifier.replies()) == 1


async def test_fleet_burst_becomes_one_summary(db: Database, clock: FakeClock) -> None:
    notifier = RecordingNotifier()
    p = make_pipeline(db, notifier, clock, fleet_burst_hosts=3, fleet_burst_window_s=60.0)
    for i in range(8):
        await send(p, kill(i, host=f"node-{i}"))
        clock.advance(2)
        if i == 3:
            await p.drain()
    await p.drain()
    top = notifier.top_level()
    # two individual alerts, then the third host turns it into ONE burst summary
    assert len(top) == 3
    summary = top[2][1]
    assert "hosts alerting at once" in summary.text
    assert notifier.updates, "later hosts update the summary instead of posting"
    assert notifier.updates[-1][0] == top[2][3]
    assert "node-7" in str(notifier.updates[-1][1].blocks)
    assert "8 hosts" in notifier.updates[-1][1].text


async def test_syn_episode_updates_the_original_message(pipeline: Pipeline) -> None:
    await send(pipeline, sample_syn(revision=0, episode="start"))
    await pipeline.drain()
    await send(pipeline, sample_syn(revision=1, episode="ongoing"))
    await send(pipeline, sample_syn(revision=2, episode="ended"))
    await pipeline.drain()
    [(_, _, _, ref)] = pipeline.notifier.top_level()
    assert pipeline.notifier.updates and pipeline.notifier.updates[-1][0] == ref
    assert "ended" in str(pipeline.notifier.updates[-1][1].blocks)


async def test_history_is_stored_never_alerted(pipeline: Pipeline) -> None:
    res = await pipeline.ingestor.events(EventBatch(host="x", events=[sample_oom(history=True)]))
    await pipeline.drain()
    assert res.accepted == 1
    assert pipeline.notifier.posts == [] and pipeline.ingestor.outcomes["history"] == 1


async def test_silences_by_host_and_pod(db: Database, clock: FakeClock) -> None:
    from kernbot.bot.service import FleetService

    notifier = RecordingNotifier()
    p = make_pipeline(db, notifier, clock)
    svc = FleetService(db, None, clock=clock)  # type: ignore[arg-type]
    await svc.silence("pod:payments/ledger-*", 3600, "U1")
    await svc.silence("host:db-*", 60, None)
    await send(
        p,
        sample_oom(id="1"),  # payments/ledger-7d9f8-x2k4q: silenced
        sample_oom(id="2", host="db-3", kubernetes=None),  # silenced host
        sample_oom(id="3", host="web-1", kubernetes=None),
    )
    clock.advance(61)  # the host silence expired
    await send(p, sample_oom(id="4", host="db-3", kubernetes=None))
    await p.drain()
    assert p.ingestor.outcomes["silenced"] == 2
    assert len(notifier.top_level()) == 2
    assert [s.target for s in await svc.silences()] == ["pod:payments/ledger-*"]


async def test_routes_pick_channels(db: Database, clock: FakeClock) -> None:
    routes = parse_routes(
        [
            {"namespace": "payments", "channel": "C0PAY"},
            {"host": "edge-*", "kind": "syn_flood", "channel": "C0NET"},
        ]
    )
    notifier = RecordingNotifier()
    p = make_pipeline(db, notifier, clock, routes=routes, default_channel="C0ALERTS")
    await send(p, sample_oom(), sample_syn(), kill(9, host="web-2"))
    await p.drain()
    assert sorted(c for c, *_ in notifier.top_level()) == ["C0ALERTS", "C0NET", "C0PAY"]


def test_bad_routes_are_rejected() -> None:
    import pytest

    with pytest.raises(ValueError, match="channel"):
        parse_routes([{"host": "x"}])
    with pytest.raises(ValueError, match="routes\\[0\\]"):
        parse_routes([{"channel": "C1", "hots": "typo"}])


async def test_hostile_names_are_stored_and_rendered(pipeline: Pipeline) -> None:
    names = ["<!channel>", "*bold*", "runc:[2:INIT]", "a b/c", "x" * 300]
    await send(pipeline, *(kill(i, comm=n, host=f"h{i}") for i, n in enumerate(names)))
    await pipeline.drain()
    texts = " ".join(m.text + str(m.blocks) for _, m, _, _ in pipeline.notifier.posts)
    assert len(pipeline.notifier.top_level()) == 5
    assert "<!channel>" not in texts


async def test_long_storm_stops_replying_but_keeps_counting(db: Database, clock: FakeClock) -> None:
    notifier = RecordingNotifier()
    p = make_pipeline(db, notifier, clock, max_thread_replies=3)
    await p.ingestor.events(EventBatch(host="x", events=[kill(n) for n in range(10)]))
    await p.drain()
    assert len(notifier.top_level()) == 1 and len(notifier.replies()) == 3
    await send(p, kill(10))
    await p.drain()
    assert len(notifier.replies()) == 3
    assert "×11" in str(notifier.updates[-1][1].blocks)
