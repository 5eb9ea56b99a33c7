"""Only the kernel speaks for the kernel (issue 8, part 5).

node-problem-detector's own e2e test writes these two lines into /dev/kmsg from user space; an
agent used to turn them into an OOM alert for a kill that never happened. Written by root here,
under the kernel lock, they are `user`-facility records (devkmsg_write never lets user space
log as `kern`): the agent must count them in kernbot_agent_records_not_kernel, log the first one
(escaped) and send nothing to the bot, whether it reads /dev/kmsg or journald (which stores them
with _TRANSPORT=kernel and SYSLOG_FACILITY=1).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from typing import Any

import pytest
from agent_process import AgentProcess

from fakes.fake_bot import FakeBot

pytestmark = pytest.mark.root

FORGED = [
    "Memory cgroup out of memory: Kill process {pid} (heapster) score 1035 or sacrifice child",
    "Killed process {pid} (heapster) total-vm:327128kB, anon-rss:306328kB, file-rss:11132kB",
]


def _forge(pid: int, marker: str) -> None:
    """Write the lines to /dev/kmsg (one write() is one record), tagged with `marker`."""
    fd = os.open("/dev/kmsg", os.O_WRONLY)
    try:
        for line in FORGED:
            os.write(fd, (line.format(pid=pid) + f" {marker}\n").encode())
        os.write(fd, f"kernbot forged-kmsg test: newline\\x0ainjection {marker}\n".encode())
    finally:
        os.close(fd)


async def _metric(agent: AgentProcess, name: str) -> float:
    import aiohttp
    from agent_process import TOKEN

    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as s, s.get(agent.url + "/metrics", headers=headers) as r:
        text = await r.text()
    return sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(name))


async def _settled(agent: AgentProcess, name: str, timeout_s: float = 60.0) -> float:
    """The metric once it is unchanged for 1.5 s (a fixed sleep was too short for the first
    start to read a journal holding a thousand earlier kills)."""
    value, steady = await _metric(agent, name), 0
    for _ in range(int(timeout_s / 0.5)):
        await asyncio.sleep(0.5)
        now = await _metric(agent, name)
        steady = steady + 1 if now == value else 0
        value = now
        if steady >= 3:
            return value
    raise AssertionError(f"{name} still moving after {timeout_s} s: {value}")


async def _forged_reach_nothing(agent: AgentProcess, bot: FakeBot) -> None:
    agent.start()
    await asyncio.to_thread(agent.wait_serving)
    # the first start reads the existing log as history: a journal of a long-running test
    # machine holds thousands of records, kills among them; forged lines are only looked for
    # once the agent reads no more of it
    await _settled(agent, "kernbot_agent_records_read_total", timeout_s=120.0)
    kills_before = await _settled(agent, 'kernbot_agent_events_total{kind="oom_kill"}')
    before = await _metric(agent, "kernbot_agent_records_not_kernel_total")
    events_before = len(bot.events)
    marker = f"forged-{uuid.uuid4().hex[:8]}"
    pid = 1012
    _forge(pid, marker)
    for _ in range(300):
        if await _metric(agent, "kernbot_agent_records_not_kernel_total") >= before + 3:
            break
        await asyncio.sleep(0.1)
    assert await _metric(agent, "kernbot_agent_records_not_kernel_total") >= before + 3
    await asyncio.sleep(3.0)  # past KERNBOT_FLUSH_TIMEOUT_S: a report would have been flushed
    shipped: list[dict[str, Any]] = bot.events[events_before:]
    assert not [e for e in shipped if "heapster" in str(e)], shipped
    kills_after = await _metric(agent, 'kernbot_agent_events_total{kind="oom_kill"}')
    assert kills_after == kills_before  # the kernel lock holds off real kills meanwhile
    log = agent.log()
    assert "ignoring a record user space wrote into the kernel log" in log, log
    assert "logged once" in log and log.count("ignoring a record user space wrote") == 1


async def test_records_written_to_dev_kmsg_are_never_events(
    root_kernel: None, fake_bot: FakeBot, agent_factory: Any
) -> None:
    agent: AgentProcess = agent_factory(fake_bot, {"KERNBOT_SOURCE": "kmsg"})
    await _forged_reach_nothing(agent, fake_bot)


async def test_forged_records_through_journald_are_never_events(
    root_kernel: None, journald_running: None, fake_bot: FakeBot, agent_factory: Any
) -> None:
    agent: AgentProcess = agent_factory(fake_bot, {"KERNBOT_SOURCE": "journal"})
    await _forged_reach_nothing(agent, fake_bot)
    # journald did store them as kernel messages, with the user facility
    out = await asyncio.to_thread(
        subprocess.run,
        ["journalctl", "-k", "-o", "json", "--no-pager", "-n", "200", "--grep", "heapster"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert '"SYSLOG_FACILITY":"1"' in out.stdout.replace(" ", ""), out.stdout[-2000:]
