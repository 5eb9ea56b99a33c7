"""Signed slash commands and button presses as real HTTP to a real aiohttp server running mount().

Bolt talks to the fake Slack (KERNBOT_SLACK_API_URL) and answers through response_urls that point
at a recorder; FleetQueries is a fake that records its calls, so "no side effect" is checkable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from fakes.fake_fleet import FakeFleet
from fakes.fake_slack import FakeSlack, ResponseUrlRecorder, validate_blocks
from fakes.slack_signing import block_action_body, signed_headers, slash_command_body
from kernbot.bot.ports import OomHostAnswer
from kernbot.bot.render import encode_target
from kernbot.bot.slack_app import SlackSetupError, mount
from kernbot.settings import BotSettings

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass
class Stack:
    url: str
    slack: FakeSlack
    recorder: ResponseUrlRecorder
    fleet: FakeFleet
    session: aiohttp.ClientSession

    async def post(
        self, body: str, *, secret: str = SECRET, ts: int | None = None
    ) -> tuple[int, str]:
        headers = signed_headers(secret, body, timestamp=ts)
        async with self.session.post(self.url, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    async def command(self, command: str, text: str, user: str = "U0ALICE") -> tuple[int, str]:
        body = slash_command_body(command, text, response_url=self.recorder.url(), user_id=user)
        return await self.post(body)

    async def answer(self, command: str, text: str) -> str:
        """Run a command and return everything the user sees in the response_url answer."""
        before = len(self.recorder.posts)
        status, _ = await self.command(command, text)
        assert status == 200
        posts = await self.recorder.wait_for(before + 1)
        post = posts[before]
        assert post["response_type"] == "ephemeral"
        assert validate_blocks(post["blocks"]) == []
        return post["text"] + "\n" + json.dumps(post["blocks"], ensure_ascii=False)


class SlowFleet(FakeFleet):
    async def oom_host(self, host: str) -> OomHostAnswer:
        await asyncio.sleep(4)
        return await super().oom_host(host)


@contextlib.asynccontextmanager
async def running_stack(fleet: FakeFleet, **settings_kw: object) -> AsyncIterator[Stack]:
    """Fake Slack, response_url recorder and an aiohttp server with mount(), all on loopback."""
    async with FakeSlack() as slack, ResponseUrlRecorder() as recorder:
        settings = BotSettings(
            slack_bot_token=slack.bot_token,
            slack_signing_secret=SECRET,
            slack_api_url=slack.base_url,
            **settings_kw,  # type: ignore[arg-type]
        )
        app = web.Application()
        mount(app, settings, fleet)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
            async with aiohttp.ClientSession() as session:
                yield Stack(url, slack, recorder, fleet, session)
        finally:
            await runner.cleanup()


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with running_stack(FakeFleet(down={"k8s-node-18"})) as s:
        yield s


async def test_oom_host_answers_through_response_url(stack: Stack) -> None:
    text = await stack.answer("/oom", "k8s-node-17")
    assert "java" in text and "1974" in text and "MemAvailable" in text and "live" in text
    assert stack.fleet.calls == [("oom_host", ("k8s-node-17",))]
    assert stack.slack.posted("auth.test"), "Bolt should have checked its token with the fake"


async def test_oom_when_agent_down_says_so(stack: Stack) -> None:
    text = await stack.answer("/oom", "k8s-node-18")
    assert "did not answer" in text and "timeout after 3s" in text and "stored earlier" in text


async def test_fleet_summary_and_unknown_host(stack: Stack) -> None:
    assert "Repeat offenders" in await stack.answer("/oom", "")
    text = await stack.answer("/oom", "k8s-node-71")
    assert "I don't know a host called" in text and "k8s-node-17" in text


async def test_every_kernbot_subcommand(stack: Stack) -> None:
    assert "SyncookiesSent" in await stack.answer("/synflood", "edge-3")
    assert "Which host?" in await stack.answer("/synflood", "")
    hosts = await stack.answer("/kernbot", "hosts")
    assert "3 agents, 1 stale" in hosts
    assert "1974" in await stack.answer("/kernbot", "top k8s-node-17")
    dmesg = await stack.answer("/kernbot", "dmesg k8s-node-17 Killed process")
    assert "Killed process 7093" in dmesg
    assert ("dmesg", ("k8s-node-17", "Killed process", 50)) in stack.fleet.calls
    assert "silenced until" in await stack.answer("/kernbot", "silence host:edge-3 2h")
    assert stack.fleet.silences[-1].target == "host:edge-3"
    assert stack.fleet.silences[-1].by == "U0ALICE"
    assert ("silence", ("host:edge-3", 7200.0, "U0ALICE")) in stack.fleet.calls
    assert "/kernbot dmesg HOST" in await stack.answer("/kernbot", "help")
    assert "Try `/kernbot help`" in await stack.answer("/kernbot", "frobnicate")


async def test_bad_duration_is_explained_and_silences_nothing(stack: Stack) -> None:
    text = await stack.answer("/kernbot", "silence host:edge-3 soon")
    assert "is not a duration" in text and "30m" in text
    assert "30 days" in await stack.answer("/kernbot", "silence host:edge-3 90d")
    assert stack.fleet.silences == []


@pytest.mark.parametrize("how", ["forged", "stale", "unsigned"])
async def test_bad_signatures_are_rejected_without_side_effects(stack: Stack, how: str) -> None:
    body = slash_command_body(
        "/kernbot", "silence host:edge-3 1h", response_url=stack.recorder.url()
    )
    if how == "forged":
        status, _ = await stack.post(body, secret="not-the-secret")
    elif how == "stale":
        status, _ = await stack.post(body, ts=int(time.time()) - 600)
    else:
        async with stack.session.post(stack.url, data=body) as resp:
            status = resp.status
    assert status == 401
    await asyncio.sleep(0.3)
    assert stack.fleet.calls == [] and stack.recorder.posts == []
    press = block_action_body(
        "kernbot_silence_24h", "host:edge-3", response_url=stack.recorder.url()
    )
    assert (await stack.post(press, secret="nope"))[0] == 401
    await asyncio.sleep(0.2)
    assert stack.fleet.calls == []


async def test_silence_button_confirms_ephemerally(stack: Stack) -> None:
    target = "pod:payments/<!channel>*x*"
    body = block_action_body(
        "kernbot_silence_1h", encode_target(target), response_url=stack.recorder.url("btn")
    )
    status, _ = await stack.post(body)
    assert status == 200
    (post,) = await stack.recorder.wait_for(1)
    assert stack.fleet.calls == [("silence", (target, 3600.0, "U0ALICE"))]
    assert post["response_type"] == "ephemeral" and post["replace_original"] is False
    shown = post["text"] + json.dumps(post["blocks"])
    assert "silenced until" in shown and "<!channel>" not in shown
    # the target stays intact inside its code span, where Slack formats nothing
    assert "`pod:payments/&lt;!channel&gt;*x*`" in post["text"]
    assert "*x*" not in re.sub(r"`[^`]*`", "", shown)


async def test_ack_is_fast_even_when_the_answer_is_slow() -> None:
    async with running_stack(SlowFleet()) as s:
        started = time.monotonic()
        status, _ = await s.command("/oom", "k8s-node-17")
        assert status == 200 and time.monotonic() - started < 2.0
        assert s.recorder.posts == []
        (post,) = await s.recorder.wait_for(1, within_s=8)
        assert "java" in post["text"] + json.dumps(post["blocks"])


async def test_access_control_refuses_politely() -> None:
    async with running_stack(FakeFleet(), allowed_users=["U0ALICE"], allowed_channels=[]) as s:
        status, body = await s.command("/oom", "k8s-node-17", user="U0MALLORY")
        assert status == 200 and "Sorry, you can't use kernbot" in body
        press = block_action_body(
            "kernbot_silence_24h", "host:edge-3", response_url=s.recorder.url(), user_id="U0MALLORY"
        )
        assert (await s.post(press))[0] == 200
        (post,) = await s.recorder.wait_for(1)
        assert "Sorry" in post["text"]
        assert s.fleet.calls == []
        assert "java" in await s.answer("/oom", "k8s-node-17")  # U0ALICE is allowed


async def test_hostile_host_names_in_answers_stay_inert() -> None:
    async with running_stack(FakeFleet(hosts=["<!channel>", "*x*"], down={"*x*"})) as s:
        for command, text in [
            ("/oom", "<!channel>"),
            ("/kernbot", "hosts"),
            ("/synflood", "*x*"),
            ("/oom", "<!here>"),
        ]:
            shown = await s.answer(command, text)
            assert "<!" not in shown and "<@" not in shown


def test_http_mode_without_signing_secret_is_refused() -> None:
    settings = BotSettings(
        slack_bot_token="xoxb-x", slack_signing_secret=None, slack_app_token=None
    )
    with pytest.raises(SlackSetupError):
        mount(web.Application(), settings, FakeFleet())


async def test_socket_mode_when_app_token_is_set() -> None:
    from urllib.parse import parse_qsl

    slack, recorder, fleet = FakeSlack(), ResponseUrlRecorder(), FakeFleet()
    await slack.start()
    await recorder.start()
    settings = BotSettings(
        slack_bot_token=slack.bot_token,
        slack_app_token=slack.app_token,
        slack_signing_secret=None,
        slack_api_url=slack.base_url,
    )
    app = web.Application()
    mount(app, settings, fleet)
    assert not any(
        r.resource and r.resource.canonical == "/slack/events" for r in app.router.routes()
    )
    runner = web.AppRunner(app)
    await runner.setup()  # starts the Socket Mode connection
    try:
        body = slash_command_body("/oom", "edge-3", response_url=recorder.url())
        payload = dict(parse_qsl(body))
        await slack.socket_send(
            {
                "envelope_id": "env-1",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": payload,
            }
        )
        ack = await slack.socket_ack("env-1")
        assert ack["envelope_id"] == "env-1"
        (post,) = await recorder.wait_for(1)
        assert "java" in post["text"] + json.dumps(post["blocks"])
        assert fleet.calls == [("oom_host", ("edge-3",))]
        assert slack.posted("apps.connections.open")
    finally:
        await runner.cleanup()
        await recorder.close()
        await slack.close()


def test_bolt_does_not_warn_about_an_unused_token(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """SLACK_BOT_TOKEN in the environment (as deployed) and our API base: no Bolt warning."""
    from kernbot.bot.slack_app import build_app

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-env")
    settings = BotSettings(
        slack_bot_token="xoxb-env",  # type: ignore[arg-type]
        slack_signing_secret="s",  # type: ignore[arg-type]
        slack_api_url="http://127.0.0.1:9/api",
    )
    with caplog.at_level("WARNING"):
        app = build_app(settings, FakeFleet())
    assert not [r for r in caplog.records if "unused" in r.getMessage()], caplog.text
    assert app.client.base_url == "http://127.0.0.1:9/api/"
    assert app.client.token == "xoxb-env"
