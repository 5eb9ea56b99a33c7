"""Slack outages, rate limits and misconfiguration against the fake Slack Web API server: no
alert is lost, Retry-After is honoured, permanent errors are marked loudly."""

from __future__ import annotations

import pytest
from bot_harness import FakeClock

from fakes.fake_fleet import sample_oom
from fakes.fake_slack import FakeSlack
from kernbot.bot.alerts import AlertDecider, AlertPolicy
from kernbot.bot.delivery import DeliveryWorker
from kernbot.bot.ingest import Ingestor
from kernbot.bot.slack_notifier import SlackNotifier
from kernbot.bot.store import Database, Repository
from kernbot.core.events import Victim
from kernbot.core.wire import EventBatch


def parts(
    db: Database, slack: FakeSlack, clock: FakeClock, token: str | None = None
) -> tuple[Ingestor, DeliveryWorker]:
    notifier = SlackNotifier(
        token or slack.bot_token, base_url=slack.base_url, default_channel="C0ALERTS"
    )
    worker = DeliveryWorker(db, notifier, clock=clock, backoff_base_s=2.0)
    ingestor = Ingestor(db, AlertDecider(AlertPolicy(default_channel="C0ALERTS")), clock=clock)
    return ingestor, worker


async def ingest_kills(ingestor: Ingestor, n: int) -> None:
    events = [
        sample_oom(id=f"b:{i}", host=f"h{i}", kubernetes=None, victim=Victim(comm=f"p{i}"))
        for i in range(n)
    ]
    await ingestor.events(EventBatch(host="x", events=events))


async def pending(db: Database) -> dict[str, int]:
    return await db.run(lambda s: Repository(s).outbox_counts())


async def test_outage_then_recovery_delivers_everything_once(
    db: Database, slack: FakeSlack, clock: FakeClock
) -> None:
    ingestor, worker = parts(db, slack, clock)
    slack.fail("chat.postMessage", status=503, times=4)
    await ingest_kills(ingestor, 3)
    await worker.drain_once()
    assert slack.messages == [] and worker.health.retried == 3
    assert (await pending(db))["pending"] == 3
    for _ in range(12):  # exponential backoff: 2 s, 4 s, ... then Slack is back
        clock.advance(30)
        await worker.drain_once()
    assert sorted(m["text"][:20] for m in slack.messages) == sorted(
        {m["text"][:20] for m in slack.messages}
    )
    assert len(slack.messages) == 3
    assert (await pending(db)).get("pending", 0) == 0
    assert worker.health.permanent_error is None


async def test_rate_limit_honours_retry_after(
    db: Database, slack: FakeSlack, clock: FakeClock
) -> None:
    ingestor, worker = parts(db, slack, clock)
    slack.fail("chat.postMessage", status=429, retry_after=7)
    await ingest_kills(ingestor, 2)
    await worker.drain_once()
    assert worker.health.last_error == "ratelimited"
    calls = len(slack.posted("chat.postMessage"))
    assert calls == 1, "the rest of the batch waits instead of hammering Slack"
    clock.advance(6.5)
    await worker.drain_once()
    assert len(slack.posted("chat.postMessage")) == calls, "retried before Retry-After"
    clock.advance(1)
    await worker.drain_once()
    assert len(slack.messages) == 2


async def test_timeouts_are_retried(db: Database, slack: FakeSlack, clock: FakeClock) -> None:
    ingestor, worker = parts(db, slack, clock)
    worker.notifier = SlackNotifier(
        slack.bot_token, base_url=slack.base_url, default_channel="C0ALERTS", timeout_s=0.2
    )
    slack.fail("chat.postMessage", delay=0.5)
    await ingest_kills(ingestor, 1)
    await worker.drain_once()
    assert worker.health.retried == 1
    clock.advance(10)
    await worker.drain_once()
    # the slow call may have landed too; at least one message, and nothing pending
    assert slack.messages and (await pending(db)).get("pending", 0) == 0


async def test_invalid_auth_is_permanent_and_loud(
    db: Database, slack: FakeSlack, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    ingestor, worker = parts(db, slack, clock, token="xoxb-wrong")
    await ingest_kills(ingestor, 1)
    await worker.drain_once()
    assert worker.health.permanent_error == "invalid_auth"
    assert (await pending(db)) == {"failed": 1}
    assert any("FAILED for good" in r.message for r in caplog.records)


async def test_channel_not_found_is_permanent(
    db: Database, slack: FakeSlack, clock: FakeClock
) -> None:
    ingestor, worker = parts(db, slack, clock)
    ingestor.decider.policy = AlertPolicy(default_channel="C0MISSING")
    await ingest_kills(ingestor, 1)
    await worker.drain_once()
    assert worker.health.permanent_error == "channel_not_found"


async def test_storm_during_outage_threads_correctly_after(
    db: Database, slack: FakeSlack, clock: FakeClock
) -> None:
    ingestor, worker = parts(db, slack, clock)
    slack.fail(None, status=500, times=6)  # every method fails for a while
    repeat = [sample_oom(id=f"r:{i}", host="h", kubernetes=None) for i in range(4)]
    await ingestor.events(EventBatch(host="h", events=repeat))
    for _ in range(60):  # backoff 2, 4, 8, 16, 32, 64 s (+ jitter), then Slack is back
        clock.advance(5)
        await worker.drain_once()
    parents = [m for m in slack.messages if not m["thread_ts"]]
    replies = [m for m in slack.messages if m["thread_ts"]]
    assert len(parents) == 1 and len(replies) == 3
    assert {r["thread_ts"] for r in replies} == {parents[0]["ts"]}
    assert "×4" in str(parents[0]["blocks"])  # posted late, so it shows the whole storm
    assert (await pending(db)).get("pending", 0) == 0
