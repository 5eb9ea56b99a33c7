"""Two `kernbot bot` processes on one real PostgreSQL, every agent request sent to both: each
alert reaches the (fake) Slack exactly once, storm repeats thread once, updates apply once."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from bot_harness import postgres_url

from fakes.fake_fleet import sample_oom, sample_syn
from fakes.fake_slack import FakeSlack
from kernbot.core.events import Event, Victim
from kernbot.core.wire import EventBatch

TOKEN = "replica-token"
pytestmark = pytest.mark.postgres


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_replica(
    url: str, slack: FakeSlack, state: Path
) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    env = {
        **os.environ,
        "KERNBOT_DATABASE_URL": url,
        "KERNBOT_TOKEN": TOKEN,
        "KERNBOT_LISTEN": f"127.0.0.1:{port}",
        "KERNBOT_STATE_DIR": str(state),
        "SLACK_BOT_TOKEN": slack.bot_token,
        "KERNBOT_SLACK_API_URL": slack.base_url,
        "KERNBOT_SLACK_CHANNEL": "C0ALERTS",
        "KERNBOT_FLEET_BURST_HOSTS": "100",
    }
    env.pop("KERNBOT_CONFIG", None)
    with (state / "stderr.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kernbot", "bot", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}"


async def wait_healthy(http: aiohttp.ClientSession, base: str, proc: object) -> None:
    for _ in range(300):
        try:
            async with http.get(base + "/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"bot at {base} never became healthy")


def events() -> list[Event]:
    out: list[Event] = []
    for i in range(12):  # 12 hosts x distinct victims: 12 alerts (burst threshold raised)
        victim = Victim(pid=100 + i, comm=f"worker{i}")
        out.append(sample_oom(id=f"b{i}:1", host=f"node-{i}", kubernetes=None, victim=victim))
    for j in range(3):  # storm: same host+victim again -> thread replies on node-0's alert
        victim = Victim(pid=200 + j, comm="worker0")
        out.append(sample_oom(id=f"b0:{10 + j}", host="node-0", kubernetes=None, victim=victim))
    return out


async def test_two_replicas_post_each_alert_once(slack: FakeSlack, tmp_path: Path) -> None:
    url = postgres_url()
    procs: list[asyncio.subprocess.Process] = []
    try:
        bases = []
        for i in range(2):
            state = tmp_path / f"replica{i}"
            state.mkdir()
            proc, base = await start_replica(url, slack, state)
            procs.append(proc)
            bases.append(base)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=auth) as http:
            for base, proc in zip(bases, procs, strict=True):
                await wait_healthy(http, base, proc)

            async def send_everywhere(batch: EventBatch) -> None:
                body = batch.model_dump_json()

                async def one(base: str) -> None:
                    async with http.post(base + "/v1/events", data=body) as resp:
                        assert resp.status == 200, await resp.text()

                await asyncio.gather(*(one(b) for b in bases))

            # one event per request, sent to both replicas at once
            await asyncio.gather(
                *(send_everywhere(EventBatch(host=e.host or "", events=[e])) for e in events())
            )
            await send_everywhere(EventBatch(host="edge-3", events=[sample_syn(revision=0)]))
            for _ in range(100):
                if len(slack.messages) >= 16:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # let any duplicate show up
            await send_everywhere(
                EventBatch(host="edge-3", events=[sample_syn(revision=1, episode="ended")])
            )
            for _ in range(100):  # parent re-renders wait update_delay_s (2 s)
                if any(m["edits"] for m in slack.messages if "worker" not in m["text"]):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
        top = [m for m in slack.messages if not m["thread_ts"]]
        replies = [m for m in slack.messages if m["thread_ts"]]
        assert len(top) == 13, [m["text"] for m in top]  # 12 OOM alerts + 1 SYN alert
        assert len({m["text"] for m in top}) == 13
        assert len(replies) == 3
        assert {r["thread_ts"] for r in replies} == {
            next(m["ts"] for m in top if "worker0" in m["text"])
        }
        syn = next(m for m in top if "SYN" in m["text"] or "23456" in m["text"])
        assert syn["edits"] >= 1 and "ended" in str(syn["blocks"])
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    rcs = [p.returncode for p in procs]
    assert rcs == [0, 0], (tmp_path / "replica0" / "stderr.log").read_text()[-3000:]
