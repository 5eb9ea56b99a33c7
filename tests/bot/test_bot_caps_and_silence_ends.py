"""The fleet-wide alert cap and the announcement of a silence that runs out (issue 8, parts 3 and
7), on the bot core with a fake clock (SQLite and PostgreSQL); the per-host cap and the rest run
against a real bot process in tests/e2e/test_security_bot.py."""

from __future__ import annotations

from bot_harness import FakeClock, RecordingNotifier, make_pipeline

from fakes.fake_fleet import sample_oom
from kernbot.bot.service import FleetService
from kernbot.bot.store import Database
from kernbot.core.events import Victim
from kernbot.core.wire import EventBatch


def kill(n: int, host: str) -> object:
    return sample_oom(
        id=f"b:{host}:{n}", host=host, kubernetes=None, victim=Victim(pid=n, comm=f"c{n}")
    )


async def test_fleet_cap_then_one_fleet_storm_message(db: Database, clock: FakeClock) -> None:
    notifier = RecordingNotifier()
    p = make_pipeline(
        db, notifier, clock, host_alerts_per_min=3, fleet_alerts_per_min=5, fleet_burst_hosts=99
    )
    for host in ("a", "b", "c", "d"):
        batch = [kill(n, host) for n in range(3)]
        await p.ingestor.events(EventBatch(host=host, events=batch))
    await p.drain()
    top = [m.text for _, m, _, _ in notifier.top_level()]
    assert len(top) == 6, top  # 5 alerts, then the one fleet storm message
    assert p.ingestor.outcomes["posted"] == 5 and p.ingestor.outcomes["capped"] == 7
    storm = [t for t in top if "storm from the fleet" in t]
    assert storm and "7 more events" in storm[0]  # rendered when delivered: the count so far
    clock.advance(61)  # a quiet minute later alerts post again
    await p.ingestor.events(EventBatch(host="e", events=[kill(1, "e")]))
    assert p.ingestor.outcomes["posted"] == 6


async def test_an_expired_silence_tells_the_channel_what_it_held_back(
    db: Database, clock: FakeClock
) -> None:
    notifier = RecordingNotifier()
    p = make_pipeline(db, notifier, clock)
    svc = FleetService(db, None, clock=clock, notice_channel="C0ALERTS")  # type: ignore[arg-type]
    known = sample_oom(id="k", host="db-3", kubernetes=None, history=True)
    await p.ingestor.events(EventBatch(host="db-3", events=[known]))
    await svc.silence("db-3", 60, "U1", "maintenance")
    batch = [kill(n, "db-3") for n in range(3)]
    await p.ingestor.events(EventBatch(host="db-3", events=batch))
    assert await svc.report_ended_silences() == 0  # still active
    clock.advance(61)
    assert await svc.report_ended_silences() == 1
    assert await svc.report_ended_silences() == 0  # told once
    await p.drain()
    texts = [m.text + str(m.blocks) for _, m, _, _ in notifier.top_level()]
    assert any("silenced" in t and "maintenance" in t for t in texts)
    assert any("expired; it held back 3 alerts" in t for t in texts), texts
