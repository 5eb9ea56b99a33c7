"""Helpers of the issue-8 security tests: a real `kernbot bot` (and agent) process on loopback,
requests to it from a chosen source address, Slack-signed slash commands and button presses."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from e2e_processes import (
    SIGNING_SECRET,
    TOKEN,
    KernbotProcess,
    clean_env,
    free_port,
    message_text,
    slack_env,
    wait_until,
)

from fakes.fake_fleet import sample_oom
from fakes.fake_slack import FakeSlack, ResponseUrlRecorder
from fakes.slack_signing import block_action_body, signed_headers, slash_command_body
from kernbot.core.wire import EventBatch, Heartbeat

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def start_bot(
    procs: list[KernbotProcess],
    workdir: Path,
    slack: FakeSlack | None = None,
    **settings: str,
) -> tuple[KernbotProcess, str]:
    """`kernbot bot` with the fake Slack (when given) and the shared token; (process, base URL)."""
    port = free_port()
    env = clean_env(
        KERNBOT_TOKEN=TOKEN,
        KERNBOT_LISTEN=f"127.0.0.1:{port}",
        KERNBOT_STATE_DIR=str(workdir / "bot-state"),
        KERNBOT_LOG_LEVEL="INFO",
        **(slack_env(slack) if slack is not None else {}),
        **settings,
    )
    bot = KernbotProcess("bot", workdir, env, [port])
    procs.append(bot.start())
    await bot.wait_serving()
    return bot, f"http://127.0.0.1:{port}"


async def post_json(
    url: str,
    body: str | bytes,
    *,
    headers: dict[str, str] | None = None,
    source: str | None = None,
) -> tuple[int, str]:
    """POST from `source` (a loopback address such as 127.0.0.2) when given."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0) if source else None)
    async with (
        aiohttp.ClientSession(connector=connector) as s,
        s.post(url, data=body, headers={**AUTH, **(headers or {})}) as resp,
    ):
        return resp.status, await resp.text()


async def heartbeat(
    base: str, host: str, advertise: str | None, source: str | None = None
) -> tuple[int, str]:
    hb = Heartbeat(host=host, agent_version="test", source="kmsg", advertise_url=advertise)
    return await post_json(base + "/v1/heartbeat", hb.model_dump_json(), source=source)


async def send_events(base: str, host: str, *events: Any) -> tuple[int, str]:
    body = EventBatch(host=host, events=list(events)).model_dump_json()
    return await post_json(base + "/v1/events", body)


def kill(n: int, host: str, comm: str = "java") -> Any:
    """A distinct OOM kill (its own id and victim), as an agent would post it."""
    from kernbot.core.events import Victim

    return sample_oom(
        id=f"boot:{n}-{uuid.uuid4().hex[:6]}",
        host=host,
        kubernetes=None,
        victim=Victim(pid=1000 + n, comm=f"{comm}{n}"),
    )


async def command(
    base: str,
    recorder: ResponseUrlRecorder,
    cmd: str,
    text: str,
    user: str = "U0ALICE",
    *,
    within_s: float = 20.0,
) -> str:
    """A Slack-signed slash command; everything the user was shown (ack text or response_url)."""
    key = uuid.uuid4().hex[:8]
    body = slash_command_body(cmd, text, response_url=recorder.url(key), user_id=user)
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            base + "/slack/events", data=body, headers=signed_headers(SIGNING_SECRET, body)
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        acked = await resp.text()
    if acked.strip():
        return acked
    answered = await wait_until(
        lambda: [p for p in recorder.posts if p["_key"] == key], within_s, 0.05
    )
    assert answered, f"no answer to {cmd} {text}"
    return message_text(answered[0])


async def press(
    base: str, recorder: ResponseUrlRecorder, action: str, value: str, user: str
) -> str:
    key = uuid.uuid4().hex[:8]
    body = block_action_body(action, value, response_url=recorder.url(key), user_id=user)
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            base + "/slack/events", data=body, headers=signed_headers(SIGNING_SECRET, body)
        ) as resp,
    ):
        assert resp.status == 200
    answered = await wait_until(lambda: [p for p in recorder.posts if p["_key"] == key], 20.0, 0.05)
    assert answered
    return message_text(answered[0])


def channel_texts(slack: FakeSlack) -> list[str]:
    """Every top-level message posted in a channel, as its readers see it (latest edit)."""
    return [message_text(m) for m in slack.messages if not m.get("thread_ts")]


class Listener:
    """An HTTP server on `addr` that records every request (a stand-in agent or a thief)."""

    def __init__(self, addr: str) -> None:
        self.addr = addr
        self.requests: list[tuple[str, str | None]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Listener:
        async def any_request(request: web.Request) -> web.Response:
            self.requests.append((request.path, request.headers.get("Authorization")))
            return web.json_response({"host": "x", "events": []})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", any_request)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, self.addr, port).start()
        self.url = f"http://{self.addr}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def metric(base: str, name: str, path: str = "/metrics") -> float:
    """The sum of a Prometheus metric's samples whose name and labels start with `name`."""
    async with aiohttp.ClientSession() as s, s.get(base + path, headers=AUTH) as resp:
        text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def settle(seconds: float = 0.5) -> None:
    await asyncio.sleep(seconds)
