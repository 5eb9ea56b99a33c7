"""Issue 8 against a real `kernbot bot` process over HTTP: authentication is never optional, the
bot sends the token only to an agent's own address, silences are visible and reversible,
`/kernbot dmesg` is a privilege, one host cannot flood the channel, slow clients are cut off and
/healthz says nothing to strangers. Slash commands and buttons are signed as Slack signs them;
the fake Slack records what was posted."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from e2e_processes import TOKEN, KernbotProcess, clean_env, wait_until
from security_harness import (
    AUTH,
    Listener,
    channel_texts,
    command,
    heartbeat,
    kill,
    metric,
    post_json,
    press,
    send_events,
    start_bot,
)

from fakes.fake_slack import FakeSlack, ResponseUrlRecorder

ADMIN = "U0ADMIN"


# -- 1. authentication is never optional -------------------------------------------------------
@pytest.mark.parametrize("command_name", ["bot", "agent"])
def test_refuses_to_start_without_a_token(tmp_path: Path, command_name: str) -> None:
    env = clean_env(KERNBOT_STATE_DIR=str(tmp_path), KERNBOT_SOURCE="stdin")
    out = subprocess.run(
        [sys.executable, "-m", "kernbot", command_name],
        check=False, env=env, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert out.returncode == 2, out
    assert "KERNBOT_TOKEN" in out.stderr
    assert "kernbot up" in out.stderr and "existingTokenSecret" in out.stderr


async def test_bearer_scheme_is_case_insensitive_and_the_token_exact(
    tmp_path: Path, procs: list[KernbotProcess]
) -> None:
    _, base = await start_bot(procs, tmp_path)
    body = '{"host": "h1", "events": []}'
    for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
        status, _ = await post_json(
            base + "/v1/events", body, headers={"Authorization": f"{scheme} {TOKEN}"}
        )
        assert status == 200, scheme
    for bad in (f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer{TOKEN}", "Bearer ", TOKEN):
        status, text = await post_json(base + "/v1/events", body, headers={"Authorization": bad})
        assert status == 401 and "KERNBOT_TOKEN" in text, bad


# -- 2. the token goes only to an agent's own address -------------------------------------------
async def test_heartbeat_cannot_point_the_bot_at_another_address(
    tmp_path: Path, procs: list[KernbotProcess], slack: FakeSlack, recorder: ResponseUrlRecorder
) -> None:
    bot, base = await start_bot(procs, tmp_path, slack)
    async with Listener("127.0.0.1") as agent, Listener("127.0.0.2") as thief:
        assert (await heartbeat(base, "web-1", agent.url))[0] == 200
        status, text = await heartbeat(base, "web-1", thief.url)  # from 127.0.0.1
        assert status == 422 and "advertise_url" in text and "127.0.0.2" in text
        await command(base, recorder, "/oom", "web-1")
        await command(base, recorder, "/oom", "")  # the fleet fan-out too
        assert thief.requests == [], "the bot called an address the agent does not own"
        assert agent.requests and agent.requests[0][1] == f"Bearer {TOKEN}"
        # a host name stays bound to its agent's address while that agent is live
        status, text = await heartbeat(base, "web-1", thief.url, source="127.0.0.2")
        assert status == 409 and "127.0.0.1" in text
        # its own address, from its own address: a new host is fine
        assert (await heartbeat(base, "web-2", thief.url, source="127.0.0.2"))[0] == 200
    assert await metric(base, 'kernbot_bot_heartbeats_refused_total{reason="advertise"}') == 1
    assert await metric(base, 'kernbot_bot_heartbeats_refused_total{reason="conflict"}') == 1
    assert "refused" in bot.stderr()


async def test_agent_networks_allow_nat(tmp_path: Path, procs: list[KernbotProcess]) -> None:
    _, base = await start_bot(procs, tmp_path, KERNBOT_AGENT_NETWORKS="127.0.0.0/29")
    assert (await heartbeat(base, "nat-1", "http://127.0.0.5:9101"))[0] == 200
    assert (await heartbeat(base, "nat-2", "http://127.0.0.9:9101"))[0] == 422
    # a log line cannot be forged through the URL
    status, _ = await heartbeat(base, "nat-3", "http://x\nERROR forged.example:1/")
    assert status == 422


# -- 3. silences are visible and reversible ----------------------------------------------------
async def test_silences_are_announced_listed_and_ended(
    tmp_path: Path, procs: list[KernbotProcess], slack: FakeSlack, recorder: ResponseUrlRecorder
) -> None:
    _, base = await start_bot(procs, tmp_path, slack, KERNBOT_ADMIN_USERS=ADMIN)
    assert (await heartbeat(base, "host1", None))[0] == 200
    assert (await heartbeat(base, "host2", None))[0] == 200

    shown = await command(base, recorder, "/kernbot", "silence * 30d")
    assert "KERNBOT_ADMIN_USERS" in shown
    shown = await command(base, recorder, "/kernbot", "silence host1 8d")
    assert "KERNBOT_MAX_SILENCE" in shown
    shown = await command(base, recorder, "/kernbot", "silence hots1 1h")
    assert "don't know a host called `hots1`" in shown and "host1" in shown
    assert "0 active" not in (silences := await command(base, recorder, "/kernbot", "silences"))
    assert "No active silences" in silences

    shown = await command(base, recorder, "/kernbot", "silence host1 2h kernel upgrade")
    assert "silenced until" in shown
    announced = await wait_until(lambda: [t for t in channel_texts(slack) if "silenced" in t], 10)
    assert announced and "host1" in announced[0] and "kernel upgrade" in announced[0]
    assert "U0ALICE" in announced[0]
    ident = re.search(r"silence #(\d+)", announced[0])
    assert ident is not None

    assert (await send_events(base, "host1", kill(1, "host1"), kill(2, "host1")))[0] == 200
    await asyncio.sleep(1.0)
    assert not [t for t in channel_texts(slack) if "java1" in t or "java2" in t]

    listed = await command(base, recorder, "/kernbot", "silences")
    assert f"#{ident.group(1)}" in listed and "host1" in listed and "kernel upgrade" in listed
    ended = await command(base, recorder, "/kernbot", f"unsilence {ident.group(1)}")
    assert "held back 2" in ended
    told = await wait_until(lambda: [t for t in channel_texts(slack) if "back on" in t], 10)
    assert told and "held back 2 alerts" in told[0]
    assert "No active silences" in await command(base, recorder, "/kernbot", "silences")
    # the held-back kills are still answerable
    assert "java" in await command(base, recorder, "/oom", "host1")

    # an admin may silence the fleet
    assert "silenced until" in await command(base, recorder, "/kernbot", "silence * 1d", ADMIN)


async def test_silence_buttons_follow_the_same_rules(
    tmp_path: Path, procs: list[KernbotProcess], slack: FakeSlack, recorder: ResponseUrlRecorder
) -> None:
    _, base = await start_bot(procs, tmp_path, slack, KERNBOT_MAX_SILENCE="2h")
    assert (await heartbeat(base, "host1", None))[0] == 200
    shown = await press(base, recorder, "kernbot_silence_24h", "host:host1", "U0BOB")
    assert "KERNBOT_MAX_SILENCE" in shown
    shown = await press(base, recorder, "kernbot_silence_1h", "host:host1", "U0BOB")
    assert "silenced until" in shown
    assert await wait_until(lambda: [t for t in channel_texts(slack) if "silenced" in t], 10)


# -- 4. dmesg is a privilege -------------------------------------------------------------------
async def test_dmesg_needs_a_listed_user(
    tmp_path: Path, procs: list[KernbotProcess], slack: FakeSlack, recorder: ResponseUrlRecorder
) -> None:
    _, base = await start_bot(procs, tmp_path, slack, KERNBOT_DMESG_USERS="U0CAROL")
    async with Listener("127.0.0.1") as agent:
        assert (await heartbeat(base, "host1", agent.url))[0] == 200
        refused = await command(base, recorder, "/kernbot", "dmesg host1", "U0MALLORY")
        assert "KERNBOT_DMESG_USERS" in refused and "dmesg_restrict" in refused
        assert agent.requests == []
        await command(base, recorder, "/kernbot", "dmesg host1", "U0CAROL")
        assert [p for p, _ in agent.requests] == ["/v1/dmesg"]
    assert all(p.get("response_type") == "ephemeral" for p in recorder.posts)


# -- 7. one host cannot flood the channel --------------------------------------------------------
async def test_one_host_gets_ten_alerts_a_minute_then_one_storm_message(
    tmp_path: Path, procs: list[KernbotProcess], slack: FakeSlack, recorder: ResponseUrlRecorder
) -> None:
    _, base = await start_bot(procs, tmp_path, slack)
    assert (await heartbeat(base, "noisy", None))[0] == 200
    events = [kill(n, "noisy") for n in range(60)]
    assert (await send_events(base, "noisy", *events))[0] == 200

    def storm() -> list[str]:
        return [t for t in channel_texts(slack) if "storm" in t.lower()]

    assert await wait_until(lambda: [t for t in storm() if "50 more events" in t], 20)
    top = channel_texts(slack)
    assert len(top) == 11, top  # 10 alerts and the one storm message, edited with the count
    assert await metric(base, 'kernbot_bot_events_total{outcome="capped"}') == 50
    assert "60" in await command(base, recorder, "/oom", "")  # nothing lost: all 60 answerable


# -- 8. slow clients, connection cap, /healthz ---------------------------------------------------
async def test_incomplete_requests_are_cut_off_and_healthz_is_terse(
    tmp_path: Path, procs: list[KernbotProcess]
) -> None:
    _, base = await start_bot(procs, tmp_path)
    port = int(base.rsplit(":", 1)[1])

    def slowloris() -> float:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            t0 = time.monotonic()
            while s.recv(1024):
                pass
            return time.monotonic() - t0

    closed_after = await asyncio.to_thread(slowloris)
    assert 8.0 < closed_after < 15.0, closed_after

    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/healthz") as resp:
            assert resp.status == 200 and await resp.json() == {"status": "ok"}
        async with s.get(base + "/healthz", headers=AUTH) as resp:
            full = await resp.json()
    assert full["status"] == "ok" and "agents" in full and "delivery" in full


async def test_doctor_checks_the_token_with_an_authenticated_call(
    tmp_path: Path, procs: list[KernbotProcess]
) -> None:
    _, base = await start_bot(procs, tmp_path)

    def doctor(token: str) -> str:
        env = clean_env(KERNBOT_BOT_URL=base, KERNBOT_TOKEN=token, KERNBOT_STATE_DIR=str(tmp_path))
        out = subprocess.run(
            [sys.executable, "-m", "kernbot", "doctor"], check=False, env=env,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return out.stdout

    wrong = await asyncio.to_thread(doctor, "not-the-token")
    assert re.search(r"FAIL\s+token\s+the bot refuses this KERNBOT_TOKEN", wrong), wrong
    right = await asyncio.to_thread(doctor, TOKEN)
    assert re.search(r"OK\s+token\s+the bot accepts", right), right
