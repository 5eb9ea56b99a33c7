"""The real agent on the real /dev/kmsg, real memcg OOM kills, a real HTTP bot on loopback.

Other engineers cause OOM kills on this machine at the same time, so every assertion selects this
test's kills by victim pid and kmsg sequence (`lab.memcg.OomResult`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest
from agent_process import AgentProcess

from fakes.fake_bot import FakeBot
from lab.memcg import OomResult, memcg_oom

pytestmark = pytest.mark.root


def _is_kill(r: OomResult) -> Any:
    def pred(e: dict[str, Any]) -> bool:
        return r.is_its_kill(e) and (e.get("seq") or 0) > r.seq_before

    return pred


def _kill_ts_usec(r: OomResult) -> int:
    return next(rec.ts_usec for rec in r.records if rec.message == r.kill_line)


def _no_duplicates(bot: FakeBot) -> None:
    pairs = Counter((e["id"], e["revision"]) for e in bot.events)
    dups = {k: n for k, n in pairs.items() if n > 1}
    assert not dups, f"sent twice: {dups}"


async def _start(agent: AgentProcess, bot: FakeBot) -> None:
    before = len(bot.heartbeats)
    agent.start()
    await asyncio.to_thread(agent.wait_serving)
    deadline = time.monotonic() + 10
    while len(bot.heartbeats) <= before and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert len(bot.heartbeats) > before, agent.log()


async def test_live_kill_then_kill9_restart_sends_each_event_once(
    root_kernel: None, fake_bot: FakeBot, agent_factory: Any
) -> None:
    agent: AgentProcess = agent_factory(fake_bot)
    await _start(agent, fake_bot)
    await asyncio.sleep(1.0)  # let the first start read the existing ring buffer
    old = list(fake_bot.events)
    assert all(e.get("history") is True for e in old), "old kills must not alert"

    first = await asyncio.to_thread(memcg_oom, victim_comm="<!channel>*x*")
    got = await fake_bot.wait_for(_is_kill(first), timeout=5)
    assert got, agent.log()
    ev = got[0]
    assert ev["revision"] == 0 and not ev.get("history")
    assert ev["victim"]["comm"] == first.victim_comm
    latency_s = ev["_received"] - _kill_ts_usec(first) / 1e6
    print(f"kill line -> bot: {latency_s * 1000:.0f} ms")
    assert latency_s < 1.0

    status = await agent.get("/v1/status")
    assert status["records_read"] > 0 and status["events"].get("oom_kill", 0) >= 1
    oom = await agent.get("/v1/oom?since=1h")
    assert any(e["victim"]["pid"] == first.victim_pid for e in oom["events"])
    dmesg = await agent.get(f"/v1/dmesg?grep=Killed%20process%20{first.victim_pid}&lines=5")
    assert any(first.kill_line in line for line in dmesg["lines"])

    await asyncio.sleep(1.5)  # the report completes (flush timeout 1 s) and its position is saved
    agent.kill9()
    restarted_at = time.monotonic()
    second = await asyncio.to_thread(memcg_oom)
    await _start(agent, fake_bot)
    got2 = await fake_bot.wait_for(_is_kill(second), timeout=10)
    assert got2, agent.log()
    assert not got2[0].get("history"), "missed while down is not history"
    await asyncio.sleep(2.0)
    _no_duplicates(fake_bot)
    first_id = ev["id"]
    resent = [e for e in fake_bot.events if e["id"] == first_id and e["_received"] > restarted_at]
    assert not resent, "the first kill was handled before the restart"
    assert len({e["id"] for e in fake_bot.matching(_is_kill(second))}) == 1

    code, took = agent.terminate()
    assert code == 0 and took < 5.0, agent.log()


async def test_bot_outage_during_two_kills_delivers_both_once(
    root_kernel: None, fake_bot: FakeBot, agent_factory: Any
) -> None:
    agent: AgentProcess = agent_factory(fake_bot)
    await _start(agent, fake_bot)
    await fake_bot.down()
    kills = [await asyncio.to_thread(memcg_oom) for _ in range(2)]
    await asyncio.sleep(2.0)
    assert not any(fake_bot.matching(_is_kill(k)) for k in kills)
    status = await agent.get("/v1/status")
    assert status["outbox_depth"] >= 2
    await fake_bot.up()
    for k in kills:
        assert await fake_bot.wait_for(_is_kill(k), timeout=40), agent.log()
    await asyncio.sleep(1.0)
    _no_duplicates(fake_bot)
    metrics = await _metrics(agent)
    assert "kernbot_agent_ship_failures_total" in metrics
    code, took = agent.terminate()
    assert code == 0 and took < 5.0


async def _metrics(agent: AgentProcess) -> str:
    import aiohttp

    headers = {"Authorization": "Bearer test-token"}
    async with aiohttp.ClientSession(headers=headers) as s, s.get(agent.url + "/metrics") as r:
        return await r.text()
