"""The agent on the other real transports: journald (journalctl -k -o json, cursor resume), a
kern.log written by a real rsyslogd, and a real SYN flood between two test-made namespaces."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from agent_process import AgentProcess

from fakes.fake_bot import FakeBot
from lab.memcg import OomResult, memcg_oom

pytestmark = pytest.mark.root


def _is_kill(r: OomResult) -> Any:
    return r.is_its_kill


async def _start(agent: AgentProcess) -> None:
    agent.start()
    await asyncio.to_thread(agent.wait_serving)
    await asyncio.sleep(1.5)  # the first start reads the existing log as history


def _no_duplicates(bot: FakeBot) -> None:
    pairs = Counter((e["id"], e["revision"]) for e in bot.events)
    assert not {k: n for k, n in pairs.items() if n > 1}


async def test_journal_source_live_kill_and_cursor_resume(
    journald_running: None, fake_bot: FakeBot, agent_factory: Any
) -> None:
    agent: AgentProcess = agent_factory(fake_bot, {"KERNBOT_SOURCE": "journal"})
    await _start(agent)
    assert all(e.get("history") for e in fake_bot.events)
    first = await asyncio.to_thread(memcg_oom)
    got = await fake_bot.wait_for(_is_kill(first), timeout=10)
    assert got and not got[0].get("history"), agent.log()
    await asyncio.sleep(1.5)
    agent.kill9()
    second = await asyncio.to_thread(memcg_oom)
    await _start(agent)
    got2 = await fake_bot.wait_for(_is_kill(second), timeout=10)
    assert got2 and not got2[0].get("history"), agent.log()
    await asyncio.sleep(1.5)
    _no_duplicates(fake_bot)
    assert agent.terminate()[0] == 0


async def test_file_source_on_rsyslog_kern_log(
    rsyslog_kern_log: str, fake_bot: FakeBot, agent_factory: Any
) -> None:
    agent: AgentProcess = agent_factory(fake_bot, {"KERNBOT_SOURCE": f"file:{rsyslog_kern_log}"})
    await _start(agent)
    kill = await asyncio.to_thread(memcg_oom)
    got = await fake_bot.wait_for(_is_kill(kill), timeout=10)
    assert got and not got[0].get("history"), agent.log()
    assert agent.terminate()[0] == 0


async def test_real_syn_flood_episode_starts_and_ends(
    netns_ready: None, root_kernel: None, fake_bot: FakeBot, agent_factory: Any
) -> None:
    from lab.synflood import running_syn_flood

    with running_syn_flood() as flood:
        agent: AgentProcess = agent_factory(
            fake_bot,
            {"KERNBOT_NET_PID": str(flood.listener_pid), "KERNBOT_SYN_SAMPLE_INTERVAL_S": "1"},
        )
        await _start(agent)
        flood.start_sending(rate=300.0)

        def mine(e: dict[str, Any]) -> bool:
            return e.get("kind") == "syn_flood" and e.get("port") == flood.port

        start = await fake_bot.wait_for(lambda e: mine(e) and e["episode"] == "start", 15)
        assert start, agent.log()
        await asyncio.sleep(2.0)
        flood.stop_sending()
        ended = await fake_bot.wait_for(lambda e: mine(e) and e["episode"] == "ended", 20)
        assert ended, agent.log()
        ev = ended[-1]
        assert ev["id"] == start[0]["id"] and ev["revision"] > start[0]["revision"]
        ctx = ev["context"]
        print({k: ctx.get(k) for k in ("listener", "counters", "peak", "counter_rates")})
        listener = ctx.get("listener") or {}
        assert listener.get("port") == flood.port, ctx
        assert ctx.get("counters") or ctx.get("peak"), ctx
        assert agent.terminate()[0] == 0


def _journal_dir() -> str | None:
    """The directory where this machine's journald really writes (persistent or volatile)."""
    for d in ("/var/log/journal", "/run/log/journal"):
        if Path(d).is_dir() and any(p.is_dir() and any(p.iterdir()) for p in Path(d).iterdir()):
            return d
    return None


async def test_journal_directory_source_reads_the_host_journal_files(
    journald_running: None, fake_bot: FakeBot, agent_factory: Any
) -> None:
    """`journal:DIR` is how the unprivileged pod reads the host's mounted /var/log/journal."""
    jdir = _journal_dir()
    if jdir is None:
        pytest.skip("journald keeps no journal directory here")
    agent: AgentProcess = agent_factory(fake_bot, {"KERNBOT_SOURCE": f"journal:{jdir}"})
    await _start(agent)
    kill = await asyncio.to_thread(memcg_oom)
    got = await fake_bot.wait_for(_is_kill(kill), timeout=10)
    assert got and not got[0].get("history"), agent.log()


async def test_journal_directory_that_does_not_exist_is_a_clear_error(
    fake_bot: FakeBot, agent_factory: Any, tmp_path: Path
) -> None:
    agent: AgentProcess = agent_factory(
        fake_bot, {"KERNBOT_SOURCE": f"journal:{tmp_path / 'nope'}"}
    )
    agent.start()
    assert agent.proc is not None
    rc = await asyncio.to_thread(agent.proc.wait, 15)
    assert rc != 0
    assert "journal directory" in agent.log()
