"""Benchmarks of the bot core; prints figures, asserts nothing about time.

  python bench/bot_bench.py [--events 20000] [--agents 500] [--alerts 300]

1. ingest rate into SQLite (target >= 2,000 events/s sustained): the figure is the real path, a
   `kernbot bot` process receiving POST /v1/events in the agents' batches (wire.MAX_BATCH) while
   it delivers the resulting alerts to the fake Slack; beside it the store alone (Ingestor);
2. `/oom` fleet query over N simulated agents (real aiohttp servers on loopback, one process)
   (target < 3 s);
3. alert latency from POST /v1/events to the Slack Web API call returning, against the fake Slack
   server on loopback (target p99 < 200 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "bot"), str(ROOT / "tests" / "e2e")]

import aiohttp  # noqa: E402
from agent_doubles import AgentFarm  # noqa: E402
from e2e_processes import KernbotProcess, clean_env, free_port, slack_env  # noqa: E402

from fakes.fake_fleet import sample_oom  # noqa: E402
from fakes.fake_slack import FakeSlack  # noqa: E402
from kernbot.bot.agents_client import AgentsClient  # noqa: E402
from kernbot.bot.alerts import AlertDecider, AlertPolicy  # noqa: E402
from kernbot.bot.ingest import Ingestor  # noqa: E402
from kernbot.bot.ports import Message, PostedRef  # noqa: E402
from kernbot.bot.service import FleetService  # noqa: E402
from kernbot.bot.slack_notifier import SlackNotifier  # noqa: E402
from kernbot.bot.store import Database  # noqa: E402
from kernbot.commands.bot import build_bot  # noqa: E402
from kernbot.core.events import Event, Victim  # noqa: E402
from kernbot.core.wire import MAX_BATCH, EventBatch, Heartbeat  # noqa: E402
from kernbot.settings import BotSettings  # noqa: E402

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
    """Straight into the store: the Ingestor (store + alert decision + outbox), no HTTP."""
    db = Database(f"sqlite:///{tmp / 'ingest.db'}")
    db.migrate()
    ing = Ingestor(db, AlertDecider(AlertPolicy(fleet_burst_hosts=10_000)))
    events = make_events(n)
    started = time.perf_counter()
    for i in range(0, n, MAX_BATCH):
        await ing.events(EventBatch(host="x", events=events[i : i + MAX_BATCH]))
    took = time.perf_counter() - started
    print(
        f"ingest straight into the store (Ingestor, SQLite, batches of {MAX_BATCH}): "
        f"{n} events in {took:.2f}s = {n / took:,.0f} events/s"
    )
    again = time.perf_counter()
    for i in range(0, n, MAX_BATCH):
        await ing.events(EventBatch(host="x", events=events[i : i + MAX_BATCH]))
    took = time.perf_counter() - again
    print(f"  duplicates (agent retries) of the same {n}: {n / took:,.0f} events/s")
    db.dispose()


def _cpu_s(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_ingest_http(n: int, tmp: Path, senders: int) -> None:
    """The real path: `kernbot bot` in its own process (SQLite, Slack delivery on, against the
    fake Slack), agents' batches of wire.MAX_BATCH posted to /v1/events from this process, the
    bodies serialized before the clock starts so the client costs next to nothing."""
    slack = FakeSlack()
    await slack.start()
    port = free_port()
    env = clean_env(
        KERNBOT_TOKEN=TOKEN,
        KERNBOT_LISTEN=f"127.0.0.1:{port}",
        KERNBOT_STATE_DIR=str(tmp / "http"),
        KERNBOT_FLEET_BURST_HOSTS="10000",
        KERNBOT_LOG_LEVEL="warning",
        **slack_env(slack),
    )
    bot = KernbotProcess("bot", tmp / "http-proc", env, [port]).start()
    try:
        await bot.wait_serving()
        assert bot.proc is not None
        url = f"http://127.0.0.1:{port}/v1/events"
        events = make_events(n)
        bodies = [
            EventBatch(host="x", events=events[i : i + MAX_BATCH]).model_dump_json().encode()
            for i in range(0, n, MAX_BATCH)
        ]
        queue = list(reversed(bodies))
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        async with aiohttp.ClientSession(headers=headers) as http:

            async def sender() -> None:
                while queue:
                    async with http.post(url, data=queue.pop()) as resp:
                        assert resp.status == 200, await resp.text()
                        await resp.read()

            bot_cpu, own_cpu = _cpu_s(bot.proc.pid), time.process_time()
            started = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(senders)))
            took = time.perf_counter() - started
            bot_cpu, own_cpu = _cpu_s(bot.proc.pid) - bot_cpu, time.process_time() - own_cpu
        posted = len(slack.calls)
        print(
            f"ingest over HTTP (kernbot bot process, POST /v1/events, batches of {MAX_BATCH}, "
            f"{senders} sender{'s' if senders > 1 else ''}, SQLite, Slack delivery on): "
            f"{n} events in {took:.2f}s = {n / took:,.0f} events/s"
        )
        print(
            f"  bot CPU {bot_cpu:.2f}s ({bot_cpu / n * 1e6:.0f} us/event), client CPU "
            f"{own_cpu:.2f}s, Slack API calls meanwhile: {posted}"
        )
        try:
            code, stop_s = await bot.terminate(within_s=30)
            if code != 0 or stop_s > 5:
                print(f"  the bot took {stop_s:.1f}s to stop after SIGTERM, exit code {code}")
        except subprocess.TimeoutExpired:
            print("  the bot did NOT stop within 30 s of SIGTERM (killed)")
    finally:
        bot.cleanup()
        await slack.close()


async def bench_ingest_postgres(n: int, url: str) -> None:
    """Into an existing PostgreSQL (the tables are created if missing; nothing is dropped)."""
    import uuid

    db = Database(url)
    db.migrate()
    ing = Ingestor(db, AlertDecider(AlertPolicy(fleet_burst_hosts=10_000)))
    events = make_events(n, prefix=f"bench-{uuid.uuid4().hex[:8]}")
    started = time.perf_counter()
    for i in range(0, n, MAX_BATCH):
        await ing.events(EventBatch(host="x", events=events[i : i + MAX_BATCH]))
    took = time.perf_counter() - started
    print(f"ingest (Ingestor, PostgreSQL, batches of {MAX_BATCH}): {n / took:,.0f} events/s")
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
        for senders in (1, 4):
            await bench_ingest_http(args.events, Path(tmp) / f"s{senders}", senders)
        if args.postgres:
            await bench_ingest_postgres(args.events, args.postgres)
        await bench_fleet(args.agents, Path(tmp))
        await bench_latency(args.alerts, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
