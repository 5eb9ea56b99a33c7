"""Production shape: `kernbot agent` and `kernbot bot` as two real processes on loopback, the bot
posting to a fake Slack Web API (a real HTTP server), a real memcg OOM kill of a process named
`<!channel>`, then a Slack-signed `/oom HOST` answered through the response_url.

Other engineers OOM-kill processes here at the same time: alerts are picked by victim pid.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_processes import (
    CHANNEL,
    TOKEN,
    KernbotProcess,
    clean_env,
    free_port,
    message_text,
    slack_env,
    slash_command,
    unique_host,
    wait_until,
)

from fakes.fake_slack import FakeSlack, ResponseUrlRecorder
from lab.memcg import OomResult, memcg_oom

pytestmark = pytest.mark.root


def _alerts_about(slack: FakeSlack, oom: OomResult) -> list[dict[str, Any]]:
    return [
        m
        for m in slack.messages
        if f"pid {oom.victim_pid}" in m["text"] and m["text"].startswith("OOM kill")
    ]


async def test_agent_and_bot_processes_post_a_real_oom_kill_and_answer_oom_host(
    root_kernel: None,
    tmp_path: Path,
    slack: FakeSlack,
    recorder: ResponseUrlRecorder,
    procs: list[KernbotProcess],
) -> None:
    host = unique_host()
    bot_port, agent_port = free_port(), free_port()
    bot = KernbotProcess(
        "bot",
        tmp_path / "bot",
        clean_env(
            KERNBOT_TOKEN=TOKEN,
            KERNBOT_LISTEN=f"127.0.0.1:{bot_port}",
            KERNBOT_STATE_DIR=str(tmp_path / "bot" / "state"),
            **slack_env(slack),
        ),
        [bot_port],
    )
    agent = KernbotProcess(
        "agent",
        tmp_path / "agent",
        clean_env(
            KERNBOT_TOKEN=TOKEN,
            KERNBOT_LISTEN=f"127.0.0.1:{agent_port}",
            KERNBOT_BOT_URL=f"http://127.0.0.1:{bot_port}",
            KERNBOT_HOSTNAME=host,
            KERNBOT_STATE_DIR=str(tmp_path / "agent" / "state"),
            KERNBOT_FLUSH_TIMEOUT_S="1",
            KERNBOT_HEARTBEAT_INTERVAL_S="1",
        ),
        [agent_port],
    )
    procs += [bot.start(), agent.start()]
    await bot.wait_serving()
    await agent.wait_serving()
    await asyncio.sleep(1.5)  # first start: the existing ring buffer becomes history, no alerts
    posted_before = len(slack.messages)

    oom = await asyncio.to_thread(memcg_oom, victim_comm="<!channel>")
    killed_at = time.monotonic()
    assert oom.victim_comm == "<!channel>"
    alerts = await wait_until(lambda: _alerts_about(slack, oom), 10.0)
    print(f"kill -> Slack message: {time.monotonic() - killed_at:.2f}s")
    assert alerts, bot.output() + agent.output()
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["channel"] == CHANNEL
    text = message_text(alert)
    print(text)

    # hostile comm: escaped everywhere, never a live @channel mention
    assert "<!channel>" not in text, text
    assert "&lt;!channel&gt;" in text
    # the fields the issue names
    assert f"OOM kill on {host}: &lt;!channel&gt; (pid {oom.victim_pid})" == alert["text"]
    assert f"*Host*\n{host}" in text or host in text
    assert f"`&lt;!channel&gt;` (pid {oom.victim_pid})" in text
    score_field = next(f for f in _fields(alert) if f.startswith("*Victim oom_score*"))
    assert int(score_field.split("\n")[1].split()[0]) > 1000  # adj 1000 on top of its share
    assert "on the memory cgroup's scale" in score_field
    assert f"memory cgroup `{oom.cgroup}` hit its limit (64.0 MiB used of a 64.0 MiB limit)" in text
    assert "*Top memory users in the report (" in text and str(oom.trigger_pid) in text
    assert any(f.startswith("*Kills in 24 h*") for f in _fields(alert)), text
    assert "hit its memory limit" in text  # a suggested fix, with commands
    assert "memory.max" in text or "memory.limit_in_bytes" in text
    assert len(slack.messages) - posted_before >= 1

    # /oom HOST through Slack's signed slash command path
    answer = await slash_command(bot_port, recorder, "/oom", host)
    said = answer["_all_text"]
    print(said)
    assert answer["response_type"] == "ephemeral"
    assert f"pid {oom.victim_pid}" in said, said
    assert "&lt;!channel&gt;" in said and "<!channel>" not in said
    assert oom.cgroup in said

    for proc in (agent, bot):
        code, took = await proc.terminate()
        assert code == 0 and took < 5.0, proc.output()
    assert "Traceback" not in bot.stderr() + agent.stderr()


def _fields(message: dict[str, Any]) -> list[str]:
    return [f["text"] for b in message["blocks"] for f in b.get("fields", [])]
