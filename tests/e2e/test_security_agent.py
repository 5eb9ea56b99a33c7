"""Issue 8 on a real `kernbot agent` process: the same Bearer check as the bot, the connection
cap and request deadline of its API, and `kernbot doctor --test-alert` travelling agent -> bot ->
fake Slack, marked TEST."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
from e2e_processes import TOKEN, KernbotProcess, clean_env, free_port, wait_until
from security_harness import channel_texts, start_bot

from fakes.fake_slack import FakeSlack


async def _agent(procs: list[KernbotProcess], workdir: Path, bot_url: str) -> str:
    port = free_port()
    env = clean_env(
        KERNBOT_TOKEN=TOKEN,
        KERNBOT_LISTEN=f"127.0.0.1:{port}",
        KERNBOT_STATE_DIR=str(workdir / "agent-state"),
        KERNBOT_SOURCE="stdin",
        KERNBOT_BOT_URL=bot_url,
        KERNBOT_HOSTNAME="test-host-1",
        KERNBOT_HEARTBEAT_INTERVAL_S="1",
    )
    agent = KernbotProcess("agent", workdir, env, [port])
    procs.append(agent.start())
    await agent.wait_serving()
    return f"http://127.0.0.1:{port}"


async def test_agent_api_bearer_and_limits(tmp_path: Path, procs: list[KernbotProcess]) -> None:
    url = await _agent(procs, tmp_path, "http://127.0.0.1:9")
    async with aiohttp.ClientSession() as s:
        for scheme in ("Bearer", "bearer", "BEARER"):
            headers = {"Authorization": f"{scheme} {TOKEN}"}
            async with s.get(url + "/v1/status", headers=headers) as r:
                assert r.status == 200, scheme
        for bad in ("Bearer nope", f"Basic {TOKEN}", ""):
            async with s.get(url + "/v1/status", headers={"Authorization": bad}) as r:
                assert r.status == 401 and "Bearer" in r.headers["WWW-Authenticate"]
    port = int(url.rsplit(":", 1)[1])

    def hog() -> tuple[int, float]:
        """Open 100 idle connections: past the cap (64) they are closed at once; the rest when
        the 10 s request deadline passes."""
        import time

        socks = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(100)]
        t0 = time.monotonic()
        closed_at_once = 0
        for s in socks[64:]:
            s.settimeout(2)
            try:
                closed_at_once += s.recv(1) == b""
            except (TimeoutError, ConnectionResetError):
                closed_at_once += 1  # reset counts as closed too
        for s in socks[:64]:
            s.settimeout(20)
            with contextlib.suppress(ConnectionResetError):
                assert s.recv(1) == b""
        for s in socks:
            s.close()
        return closed_at_once, time.monotonic() - t0

    closed_at_once, took = await asyncio.to_thread(hog)
    assert closed_at_once == 36
    assert 6.0 < took < 16.0, took
    async with (  # and it still serves
        aiohttp.ClientSession() as s,
        s.get(url + "/healthz") as r,
    ):
        assert r.status == 200


async def test_doctor_test_alert_reaches_slack_marked_as_a_test(
    tmp_path: Path, procs: list[KernbotProcess], slack: FakeSlack
) -> None:
    _, bot_url = await start_bot(procs, tmp_path, slack)
    agent_url = await _agent(procs, tmp_path, bot_url)
    env = clean_env(KERNBOT_TOKEN=TOKEN, KERNBOT_BOT_URL=bot_url, KERNBOT_STATE_DIR=str(tmp_path))
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "kernbot", "doctor", "--test-alert", "--agent-url", agent_url],
        env=env, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert "OK   test-alert" in out.stdout, out.stdout + out.stderr
    posted = await wait_until(lambda: [t for t in channel_texts(slack) if "TEST" in t], 20)
    assert posted and "test-host-1" in posted[0] and "no process was killed" in posted[0]
