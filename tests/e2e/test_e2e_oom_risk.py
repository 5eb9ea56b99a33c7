"""OOM risk on the real kernel: `kernbot agent` and `kernbot bot` as processes, the fake Slack.

Three cgroups made here at once: one whose process grows ~1 MiB/s toward a 128 MiB limit (warned
before the kernel kills it, with a time to the limit within 30 % of what really remained; the
same message then says killed, and the kill alert says it was warned), one holding 75 % steady
for over 60 s (never warned), one growing without a limit (never warned). The agent is restarted
right after the warning: the restarted agent must not warn again, and must still turn that
message into "killed".

Other engineers' cgroups live on this host too: messages are picked by our cgroup names.

The same test on cgroup v2 (Debian 6.1 in a throwaway guest that sees this repository):

    flock /tmp/kernbot-vmguest.lock python3 tests/lab/vmguest.py --timeout 900 -- \
        .venv/bin/python -m pytest -p no:cacheprovider tests/e2e/test_e2e_oom_risk.py
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from e2e_processes import (
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
from lab.memgrow import Grower

pytestmark = pytest.mark.root

LIMIT_MIB = 128


def _about(slack: FakeSlack, cgroup: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages if cgroup in message_text(m)]


def _warnings_about(slack: FakeSlack, cgroup: str) -> list[dict[str, Any]]:
    """OOM-risk warnings (their Episode fact) about this cgroup."""
    return [m for m in _about(slack, cgroup) if "*Episode*" in message_text(m)]


def _eta_s(text: str) -> float:
    m = re.search(r"\*Time to limit\*\n`?[~∼](\d+) (s|min)", text)
    assert m, text
    return float(m.group(1)) * (60 if m.group(2) == "min" else 1)


def _since(text: str) -> float:
    m = re.search(r"since `?(\d{4}-\d\d-\d\dT[0-9:.+]+)", text)
    assert m, text
    return datetime.fromisoformat(m.group(1)).timestamp()


def _processes(
    tmp_path: Path, slack: FakeSlack, host: str
) -> tuple[KernbotProcess, dict[str, str], int]:
    """The bot process and the agent's environment (its port in `PORT`)."""
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
    agent_env = clean_env(
        KERNBOT_TOKEN=TOKEN,
        KERNBOT_LISTEN=f"127.0.0.1:{agent_port}",
        KERNBOT_BOT_URL=f"http://127.0.0.1:{bot_port}",
        KERNBOT_HOSTNAME=host,
        KERNBOT_STATE_DIR=str(tmp_path / "agent" / "state"),
        KERNBOT_FLUSH_TIMEOUT_S="1",
        KERNBOT_HEARTBEAT_INTERVAL_S="1",
        KERNBOT_RISK_DISCOVER_INTERVAL_S="2",
        PORT=str(agent_port),
    )
    return bot, agent_env, bot_port


async def _listed_fleet_wide(
    bot_port: int, recorder: ResponseUrlRecorder, host: str, cgroup: str
) -> None:
    """`/kernbot risks` (Slack-signed) asks the live agents and lists the episode."""
    answer = await slash_command(bot_port, recorder, "/kernbot", "risks")
    said = answer["_all_text"]
    print(said)
    assert f"`{host}`" in said and cgroup in said, said


async def _killed_in_place(slack: FakeSlack, cgroup: str, warning_ts: str) -> None:
    """The warning's own message now says killed, and the kill alert says it was warned."""

    def killed_text() -> str | None:
        texts = [message_text(m) for m in _about(slack, cgroup)]
        return next((t for t in texts if "OOM killer struck" in t), None)

    final = await wait_until(killed_text, 20.0, 0.2)
    assert final, [message_text(m) for m in _about(slack, cgroup)]
    print(final)
    risk_messages = [m for m in _about(slack, cgroup) if "*Episode*" in message_text(m)]
    assert [m["ts"] for m in risk_messages] == [warning_ts]  # one message, updated
    kill_alert = await wait_until(
        lambda: [
            m for m in slack.messages
            if m["text"].startswith("OOM kill") and cgroup in message_text(m)
        ],
        20.0,
    )  # fmt: skip
    assert kill_alert
    assert "kernbot warned" in message_text(kill_alert[0]), message_text(kill_alert[0])


async def test_growth_is_warned_before_the_kill_and_steady_or_unlimited_is_not(
    root_kernel: None,
    tmp_path: Path,
    slack: FakeSlack,
    recorder: ResponseUrlRecorder,
    procs: list[KernbotProcess],
) -> None:
    host = unique_host()
    bot, agent_env, bot_port = _processes(tmp_path, slack, host)
    agent = KernbotProcess("agent", tmp_path / "agent", agent_env, [int(agent_env["PORT"])])
    procs += [bot.start(), agent.start()]
    await bot.wait_serving(90.0)  # a cold start in the slow v2 guest takes a while
    await agent.wait_serving(90.0)
    await asyncio.sleep(1.5)

    growing = await asyncio.to_thread(Grower, limit_mib=LIMIT_MIB, rate_mib_s=1.0)
    steady = await asyncio.to_thread(
        Grower, limit_mib=LIMIT_MIB, rate_mib_s=20.0, hold_mib=LIMIT_MIB * 3 // 4 - 10
    )
    unlimited = await asyncio.to_thread(Grower, limit_mib=None, rate_mib_s=1.0, hold_mib=150)
    try:
        warned = await wait_until(lambda: _about(slack, growing.cgroup), 150.0, 0.1)
        assert warned, bot.output() + agent.output()
        first = message_text(warned[0])
        seen_at = time.time()
        print(first)
        assert growing.poll_exit() is None, "the warning came after the kill"
        eta, since = _eta_s(first), _since(first)
        assert "⚠️" in first and f"of {LIMIT_MIB}.0 MiB" in first
        await _listed_fleet_wide(bot_port, recorder, host, growing.cgroup)

        # an agent restart must not warn again
        code, _ = await agent.terminate()
        assert code == 0, agent.output()
        agent = KernbotProcess("agent", tmp_path / "agent2", agent_env, [int(agent_env["PORT"])])
        procs.append(agent.start())
        await agent.wait_serving(90.0)

        killed_at = await wait_until(growing.poll_exit, 120.0, 0.05)
        assert killed_at, "the grower was never killed"
        remaining = killed_at - since
        print(f"eta {eta:.0f}s, remaining {remaining:.1f}s, message seen {seen_at - since:.1f}s in")
        assert eta == pytest.approx(remaining, rel=0.3)

        await _killed_in_place(slack, growing.cgroup, warned[0]["ts"])

        # the steady one has held 75 % for over 60 s by now, the unlimited one grew unbounded
        assert time.time() - steady.started > 60
        assert steady.poll_exit() is None
        # (other alerts may name them: the kill alert's "who is next" lists their processes)
        assert _warnings_about(slack, steady.cgroup) == []
        assert _warnings_about(slack, unlimited.cgroup) == []

        answer = await slash_command(bot_port, recorder, "/oom", host)
        print(answer["_all_text"])
    finally:
        for g in (growing, steady, unlimited):
            await asyncio.to_thread(g.close)
    for proc in (agent, bot):
        code, _took = await proc.terminate()
        assert code == 0, proc.output()
    assert "Traceback" not in bot.stderr() + agent.stderr()
