"""Across kills from the bot's store: the same pod killed at the same usage three times says
how often, even when the agent did not (a fresh agent, an older agent)."""

from __future__ import annotations

from bot_harness import FakeClock

from fakes.fake_fleet import sample_oom
from kernbot.bot.alerts import AlertDecider, AlertPolicy
from kernbot.bot.ingest import Ingestor
from kernbot.bot.recurrence import store_recurrence
from kernbot.bot.store import Database, Repository
from kernbot.core.context import Recurrence
from kernbot.core.events import OomKillEvent
from kernbot.core.wire import EventBatch

TIMES = ["2021-12-20T09:00:00+00:00", "2021-12-20T09:31:00+00:00", "2021-12-20T09:59:00+00:00"]


async def test_three_stored_kills_of_one_pod_at_its_limit(db: Database, clock: FakeClock) -> None:
    ingestor = Ingestor(db, AlertDecider(AlertPolicy()), clock=clock)
    kills = [sample_oom(id=f"r:{i}", time=t) for i, t in enumerate(TIMES)]
    other_host = sample_oom(id="r:x", host="elsewhere", time=TIMES[1])
    for ev in [kills[0], other_host]:
        await ingestor.events(EventBatch(host=ev.host or "", events=[ev]))
    last: OomKillEvent = kills[2]

    def ask(session: object) -> object:
        return store_recurrence(Repository(session), last, clock() + 10**9)  # type: ignore[arg-type]

    assert await db.run(ask) is None  # one stored kill (the other host's does not count)
    await ingestor.events(EventBatch(host=last.host or "", events=[kills[1]]))
    got = await db.run(ask)
    assert isinstance(got, Recurrence)
    assert got.kills == 3
    assert got.interval_s == 29.5 * 60  # the median of 31 and 28 minutes
    assert got.text.startswith("grows to its limit every ~30 min (3 kills at 31.0 GiB)")
