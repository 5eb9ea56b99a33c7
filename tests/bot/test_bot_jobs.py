"""Stale agents: exactly one `agent_stale` notice when an agent goes silent and one
`agent_back` when it returns, however often (and from however many replicas) the job runs."""

from __future__ import annotations

import asyncio

from bot_harness import FakeClock, Pipeline

from kernbot.bot.jobs import BotJobs
from kernbot.bot.store import Database
from kernbot.core.wire import Heartbeat


def hb(host: str) -> Heartbeat:
    return Heartbeat(host=host, agent_version="0.1.0", source="kmsg")


def notices(p: Pipeline) -> list[str]:
    return [m.text for _, m, thread, _ in p.notifier.posts if thread is None]


async def test_one_stale_notice_and_one_back(
    db: Database, clock: FakeClock, pipeline: Pipeline
) -> None:
    jobs = BotJobs(db, stale_after_s=180, notice_channel="C0OPS", clock=clock)
    await pipeline.ingestor.heartbeat(hb("web-1"))
    await pipeline.ingestor.heartbeat(hb("web-2"))
    clock.advance(100)
    await pipeline.ingestor.heartbeat(hb("web-2"))
    assert await jobs.check_stale() == []
    clock.advance(100)  # web-1 silent 200 s, web-2 100 s
    assert await jobs.check_stale() == ["web-1"]
    for _ in range(5):
        clock.advance(30)
        await pipeline.ingestor.heartbeat(hb("web-2"))
        assert await jobs.check_stale() == []
    await pipeline.drain()
    assert len(notices(pipeline)) == 1 and "web-1" in notices(pipeline)[0]
    assert await pipeline.ingestor.heartbeat(hb("web-1")) is True
    assert await pipeline.ingestor.heartbeat(hb("web-1")) is False
    await pipeline.drain()
    assert len(notices(pipeline)) == 2 and "reporting again" in notices(pipeline)[1]
    # the job's notice went to its channel; the ingestor here has none (notifier default)
    assert [c for c, *_ in pipeline.notifier.posts] == ["C0OPS", None]


async def test_concurrent_checks_flip_once(
    db: Database, clock: FakeClock, pipeline: Pipeline
) -> None:
    """Several replicas' jobs at the same moment (on PostgreSQL: separate connections)."""
    for i in range(5):
        await pipeline.ingestor.heartbeat(hb(f"node-{i}"))
    clock.advance(1000)
    replicas = [BotJobs(db, stale_after_s=180, clock=clock) for _ in range(4)]
    flipped = await asyncio.gather(*(j.check_stale() for j in replicas))
    assert sorted(h for hosts in flipped for h in hosts) == [f"node-{i}" for i in range(5)]
    await pipeline.drain()
    assert len(notices(pipeline)) == 1 and "5 kernbot agents" in notices(pipeline)[0]


async def test_scheduler_runs_the_job(db: Database, clock: FakeClock, pipeline: Pipeline) -> None:
    await pipeline.ingestor.heartbeat(hb("web-9"))
    clock.advance(10)
    jobs = BotJobs(db, stale_after_s=5, check_every_s=0.1, clock=clock)
    jobs.start()
    try:
        for _ in range(50):
            await asyncio.sleep(0.05)
            await pipeline.worker.drain_once()
            if notices(pipeline):
                break
    finally:
        jobs.shutdown()
    assert len(notices(pipeline)) == 1


async def test_digest_posts_the_fleet_summary(
    db: Database, clock: FakeClock, pipeline: Pipeline
) -> None:
    from fakes.fake_fleet import FakeFleet

    jobs = BotJobs(db, stale_after_s=180, clock=clock, fleet=FakeFleet(), digest_time="08:30")
    await jobs.digest()
    await pipeline.drain()
    [text] = notices(pipeline)
    assert "last 24 hours" in text


async def test_prune_keeps_recent_and_forgets_old(
    db: Database, clock: FakeClock, pipeline: Pipeline
) -> None:
    from fakes.fake_fleet import sample_oom
    from kernbot.bot.store import Repository
    from kernbot.core.wire import EventBatch

    await pipeline.ingestor.events(EventBatch(host="h", events=[sample_oom(id="old")]))
    await pipeline.drain()
    clock.advance(40 * 86400)
    await pipeline.ingestor.events(EventBatch(host="h", events=[sample_oom(id="new")]))
    await BotJobs(db, stale_after_s=180, clock=clock).prune()
    keys = await db.run(
        lambda s: sorted(Repository(s).events_by_keys({"k8s-node-17/old", "k8s-node-17/new"}))
    )
    assert keys == ["k8s-node-17/new"]
    counts = await db.run(lambda s: Repository(s).outbox_counts())
    assert counts == {"pending": 1}  # the new alert's post; the old delivered one is gone
