"""Benchmarks of the bot core; prints figures, asserts nothing about time.

  python bench/bot_bench.py [--events 20000] [--agents 500] [--alerts 300]

1. ingest rate into SQLite (target >= 2,000 events/s sustained), through the real Ingestor
   (store + alert decision + outbox) and through HTTP POST /v1/events;
2. `/oom` fleet query over N simulated agents (real aiohttp servers on loopback, one process)
   (target < 3 s);
3. alert latency from POST /v1/events to the Slack Web API call returning, against the fake Slack
   server on loopback (target p99 < 200 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "bot")]

import aiohttp  # noqa: E402
from agent_doubles import AgentFarm  # noqa: E402

from fakes.fake_fleet import sample_oom  # noqa: E402
from fakes.fake_slack import FakeSlack  # noqa: E402
from kernbot.bot.agents_client import AgentsClient  # noqa: E402
from kernbot.bot.alerts import AlertDecider, AlertPolicy  # noqa: E402
from kernbot.bot.ingest import Ingestor  # noqa: E402
from kernbot.bot.main import build_bot  # noqa: E402
from kernbot.bot.ports import Message, PostedRef  # noqa: E402
from kernbot.bot.service import FleetService  # noqa: E402
from kernbot.bot.slack_notifier import SlackNotifier  # noqa: E402
from kernbot.bot.store import Database  # noqa: E402
from kernbot.core.events import Event, Victim  # noqa: E402
from kernbot.settings import BotSettings  # noqa: E402
from kernbot.wire import EventBatch, Heartbeat  # noqa: E402

TOKEN = "bench-token"


def make_events(n: int, start: int = 0, hosts: int = 50, prefix: str = "bench") -> list[Event]:
    base = sample_oom(kubernetes=None)
    out: list[Event] = []
    for i in range(start, start + n):
        h = i % hosts
        victim = Victim(pid=i, comm=f"worker{i % 7}", anon_rss_kb=1000 + i)
        out.append(
            base.model_copy(update={"id": f"{prefix}:{i}", "host": f"node-{h}", "victim": victim})
        )
    return out


async def bench_ingest(n: int, tmp: Path) -> None:
    db = Database(f"sqlite:///{tmp / 'ingest.db'}")
    db.migrate()
    ing = Ingestor(db, AlertDecider(AlertPolicy(fleet_burst_hosts=10_000)))
    events = make_events(n)
    started = time.perf_counter()
    for i in range(0, n, 100):
        await ing.events(EventBatch(host="x", events=events[i : i + 100]))
    took = time.perf_counter() - started
    print(
        f"ingest (Ingestor, SQLite, batches of 100): {n} events in {took:.2f}s"
        f" = {n / took:,.0f} events/s"
    )
    again = time.perf_counter()
    for i in range(0, n, 100):
        await ing.events(EventBatch(host="x", events=events[i : i + 100]))
    took = time.perf_counter() - again
    print(f"  duplicates (agent retries) of the same {n}: {n / took:,.0f} events/s")
    db.dispose()

    settings = BotSettings(
        token=TOKEN, listen="127.0.0.1:0", state_dir=tmp / "http", fleet_burst_hosts=10_000
    )  # type: ignore[arg-type]
    bot = build_bot(settings, notifier=NullNotifier())
    await bot.start()
    events = make_events(n, start=n)
    bodies = [
        EventBatch(host="x", events=events[i : i + 100]).model_dump_json() for i in range(0, n, 100)
    ]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        started = time.perf_counter()
        for body in bodies:
            async with http.post(bot.url + "/v1/events", data=body) as resp:
                assert resp.status == 200
        took = time.perf_counter() - started
    print(
        "ingest (HTTP POST /v1/events, SQLite, batches of 100, alerts delivered meanwhile): "
        f"{n / took:,.0f} events/s"
    )
    await bot.stop()


class NullNotifier:
    name = "null"

    def __init__(self) -> None:
        self.n = 0

    async def post(
        self, channel: str | None, message: Message, thread: PostedRef | None = None
    ) -> PostedRef:
        self.n += 1
        return PostedRef(channel=channel or "C0", ts=f"{self.n}.0")

    async def update(self, ref: PostedRef, message: Message) -> None:
        self.n += 1


async def bench_ingest_postgres(n: int, url: str) -> None:
    """Into an existing PostgreSQL (the tables are created if missing; nothing is dropped)."""
    import uuid

    db = Database(url)
    db.migrate()
    ing = Ingestor(db, AlertDecider(AlertPolicy(fleet_burst_hosts=10_000)))
    events = make_events(n, prefix=f"bench-{uuid.uuid4().hex[:8]}")
    started = time.perf_counter()
    for i in range(0, n, 100):
        await ing.events(EventBatch(host="x", events=events[i : i + 100]))
    took = time.perf_counter() - started
    print(f"ingest (Ingestor, PostgreSQL, batches of 100): {n / took:,.0f} events/s")
    db.dispose()


async def bench_fleet(agents: int, tmp: Path) -> None:
    farm = AgentFarm(token=TOKEN)
    hosts = [f"node-{i:03d}" for i in range(agents)]
    now_iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    for i, h in enumerate(hosts):
        farm.events[h] = [sample_oom(id=f"f:{i}", host=h, time=now_iso, kubernetes=None)]
    farm.slow = {hosts[0], hosts[1]}
    farm.delay_s = 30.0
    await farm.start(hosts)
    db = Database(f"sqlite:///{tmp / 'fleet.db'}")
    db.migrate()
    ing = Ingestor(db, AlertDecider(AlertPolicy()))
    for h in hosts:
        await ing.heartbeat(
            Heartbeat(host=h, advertise_url=farm.urls[h], agent_version="b", source="kmsg")
        )
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512)) as http:
        svc = FleetService(db, AgentsClient(http, token=TOKEN, timeout_s=2.0))
        for label in ("cold", "warm"):
            started = time.perf_counter()
            summary = await svc.oom_fleet()
            took = time.perf_counter() - started
            print(
                f"/oom fleet over {agents} agents ({label}, 2 of them hanging, 2 s agent timeout): "
                f"{took:.2f}s, {summary.total_kills} kills on {len(summary.by_host)} hosts"
            )
        started = time.perf_counter()
        await svc.oom_host(hosts[250 % agents])
        print(f"/oom one host: {(time.perf_counter() - started) * 1000:.1f} ms")
    await farm.close()
    db.dispose()


class TimingNotifier:
    """Wraps the real SlackNotifier; stamps when each Slack call returned."""

    name = "slack"

    def __init__(self, inner: SlackNotifier) -> None:
        self.inner = inner
        self.done: dict[str, float] = {}

    async def post(
        self, channel: str | None, message: Message, thread: PostedRef | None = None
    ) -> PostedRef:
        ref = await self.inner.post(channel, message, thread)
        self.done[message.text] = time.perf_counter()
        return ref

    async def update(self, ref: PostedRef, message: Message) -> None:
        await self.inner.update(ref, message)


async def bench_latency(alerts: int, tmp: Path) -> None:
    slack = FakeSlack()
    await slack.start()
    notifier = TimingNotifier(
        SlackNotifier(slack.bot_token, base_url=slack.base_url, default_channel="C0ALERTS")
    )
    settings = BotSettings(
        token=TOKEN, listen="127.0.0.1:0", state_dir=tmp / "lat", fleet_burst_hosts=10_000
    )  # type: ignore[arg-type]
    bot = build_bot(settings, notifier=notifier)
    await bot.start()
    sent: dict[str, float] = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for i in range(alerts):
            event = sample_oom(
                id=f"lat:{i}", host=f"lat-{i}", kubernetes=None, victim=Victim(pid=i, comm="svc")
            )
            body = EventBatch(host=event.host or "", events=[event]).model_dump_json()
            key = f"OOM kill on lat-{i}: svc (pid {i})"
            sent[key] = time.perf_counter()
            async with http.post(bot.url + "/v1/events", data=body) as resp:
                assert resp.status == 200
            await asyncio.sleep(0.02)  # ~50 alerts/s, far above a real fleet's rate
        for _ in range(500):
            if len(notifier.done) >= alerts:
                break
            await asyncio.sleep(0.02)
    await bot.stop()
    await slack.close()
    lat = sorted((notifier.done[k] - t) * 1000 for k, t in sent.items() if k in notifier.done)
    if len(lat) < alerts:
        print(f"alert latency: only {len(lat)}/{alerts} alerts matched (renderer text changed?)")
    if lat:
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print(
            f"alert latency POST /v1/events -> Slack call done, {len(lat)} alerts: "
            f"p50 {statistics.median(lat):.1f} ms, p99 {p99:.1f} ms, max {lat[-1]:.1f} ms"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--postgres", metavar="URL", help="also measure ingest into PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kernbot-bench-") as tmp:
        await bench_ingest(args.events, Path(tmp))
        if args.postgres:
            await bench_ingest_postgres(args.events, args.postgres)
        await bench_fleet(args.agents, Path(tmp))
        await bench_latency(args.alerts, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
