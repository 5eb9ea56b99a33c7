"""`kernbot up` posting to a fake Slack Web API while a real SYN flood hits a listener in a
network namespace the lab created (the agent watches it through KERNBOT_NET_PID): the alert
names the port and what the kernel did; when the flood stops the SAME message is updated
(chat.update) to say it ended; a signed `/synflood HOST` answers with that flood.

Other engineers' floods show up in /dev/kmsg too: messages are picked by this listener's port.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_processes import (
    CHANNEL,
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

pytestmark = pytest.mark.root


def _flood_alerts(slack: FakeSlack, host: str, port: int) -> list[dict[str, Any]]:
    return [m for m in slack.messages if m["text"] == f"SYN flood on {host}, port {port}"]


def _episode(message: dict[str, Any]) -> str:
    for block in message["blocks"]:
        for f in block.get("fields", []):
            if f["text"].startswith("*Episode*"):
                return str(f["text"])
    return ""


async def test_up_posts_a_real_syn_flood_then_updates_it_when_it_ends(
    netns_ready: None,
    tmp_path: Path,
    slack: FakeSlack,
    recorder: ResponseUrlRecorder,
    procs: list[KernbotProcess],
) -> None:
    from lab.synflood import running_syn_flood

    host = unique_host()
    bot_port, agent_port = free_port(), free_port()
    with running_syn_flood() as flood:
        up = KernbotProcess(
            "up",
            tmp_path / "up",
            clean_env(
                KERNBOT_LISTEN=f"127.0.0.1:{bot_port}",
                KERNBOT_AGENT_LISTEN=f"127.0.0.1:{agent_port}",
                KERNBOT_STATE_DIR=str(tmp_path / "state"),
                KERNBOT_HOSTNAME=host,
                KERNBOT_NET_PID=str(flood.listener_pid),
                KERNBOT_SYN_SAMPLE_INTERVAL_S="1",
                KERNBOT_HEARTBEAT_INTERVAL_S="1",
                **slack_env(slack),
            ),
            [bot_port, agent_port],
        )
        procs.append(up.start())
        await up.wait_serving()
        await asyncio.sleep(1.5)  # first start: the existing ring buffer becomes history

        flood.start_sending(rate=300.0)
        started_at = time.monotonic()
        posted = await wait_until(lambda: _flood_alerts(slack, host, flood.port), 15.0)
        print(f"flood -> Slack message: {time.monotonic() - started_at:.2f}s")
        assert posted, up.output()
        assert len(posted) == 1
        alert = posted[0]
        assert alert["channel"] == CHANNEL
        text = message_text(alert)
        print(text)
        assert f"port {flood.port}" in alert["text"]
        assert "is answering with SYN cookies" in text  # the action (net.ipv4.tcp_syncookies=1)
        assert f"`{flood.listen_addr}:{flood.port}`" in text
        assert "ended" not in _episode(alert)
        ts = alert["ts"]

        # /synflood HOST while it is going on
        answer = await slash_command(bot_port, recorder, "/synflood", host)
        said = answer["_all_text"]
        print(said)
        assert f":{flood.port}`" in said, said

        await asyncio.sleep(1.0)
        flood.stop_sending()
        stopped_at = time.monotonic()
        ended = await wait_until(lambda: "ended" in _episode(alert), 15.0)
        print(f"flood stopped -> message updated: {time.monotonic() - stopped_at:.2f}s")
        assert ended, message_text(alert) + up.output()
        assert alert["ts"] == ts and alert["edits"] >= 1
        assert len(_flood_alerts(slack, host, flood.port)) == 1, "updated, not posted again"
        updates = [c for c in slack.posted("chat.update") if c.get("ts") == ts]
        assert updates, slack.calls
        final = message_text(alert)
        print(final)
        assert "spoofed" in final or "attack" in final, final  # cookies never came back

        code, took = await up.terminate()
        assert code == 0 and took < 5.0, up.output()
    assert "Traceback" not in up.stderr(), up.stderr()
