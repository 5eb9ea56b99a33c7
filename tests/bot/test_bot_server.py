"""The bot as it runs: `build_bot` on loopback, agents' requests over real HTTP, alerts into the
fake Slack Web API; bad requests get 4xx with a reason."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from fakes.fake_fleet import sample_oom, sample_syn
from fakes.fake_slack import FakeSlack
from kernbot.agent.metrics import AgentMetrics
from kernbot.agent.outbox import Outbox
from kernbot.agent.shipper import Shipper
from kernbot.bot.ports import Message, PostedRef
from kernbot.commands.bot import Bot, build_bot
from kernbot.core.events import WIRE_VERSION
from kernbot.core.wire import EventBatch, Heartbeat
from kernbot.settings import BotSettings

TOKEN = "agent-secret"


def bot_settings(tmp_path: Path, slack: FakeSlack, **extra: object) -> BotSettings:
    return BotSettings(
        token=TOKEN,  # type: ignore[arg-type]
        listen="127.0.0.1:0",
        state_dir=tmp_path,
        slack_bot_token=slack.bot_token,  # type: ignore[arg-type]
        slack_api_url=slack.base_url,
        slack_channel="C0ALERTS",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def bot(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[Bot]:
    b = build_bot(bot_settings(tmp_path, slack, max_body_bytes=64 * 1024))
    await b.start()
    yield b
    await b.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        yield s


async def wait_for(pred: object, within_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not pred():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_events_reach_slack_once_despite_agent_retries(
    bot: Bot, slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    body = EventBatch(host="k8s-node-17", events=[sample_oom(), sample_syn()]).model_dump_json()
    for _ in range(3):  # the agent retries (its first answers got lost)
        async with http.post(bot.url + "/v1/events", data=body) as resp:
            assert resp.status == 200
    await wait_for(lambda: len(slack.messages) == 2)
    await asyncio.sleep(0.5)
    assert len(slack.messages) == 2
    assert {m["channel"] for m in slack.messages} == {"C0ALERTS"}


@pytest.mark.parametrize(
    "case",
    [
        ({"Authorization": "Bearer wrong"}, "{}", 401, "token"),
        ({"Authorization": ""}, "{}", 401, "token"),
        ({}, "{not json", 400, "not JSON"),
        ({}, json.dumps({"host": "h"}), 422, "events"),
        ({}, json.dumps({"host": "h", "events": [{"kind": "nope"}]}), 422, "events.0"),
        ({}, json.dumps({"host": "h", "events": [{}] * 501}), 422, "events"),
        ({}, json.dumps({"host": "h", "events": [], "pad": "x" * 70_000}), 413, "too large"),
    ],
)
async def test_bad_requests_are_refused_with_a_reason(
    bot: Bot, http: aiohttp.ClientSession, case: tuple[dict[str, str], str, int, str]
) -> None:
    headers, body, status, reason = case
    async with http.post(bot.url + "/v1/events", data=body, headers=headers) as resp:
        assert resp.status == status
        assert reason in await resp.text()


async def test_heartbeat_registers_agent_and_healthz_metrics(
    bot: Bot, http: aiohttp.ClientSession
) -> None:
    hb = Heartbeat(host="web-1", agent_version="0.1.0", source="kmsg")
    async with http.post(bot.url + "/v1/heartbeat", data=hb.model_dump_json()) as resp:
        assert resp.status == 200
    async with http.get(bot.url + "/healthz") as resp:
        health = await resp.json()
        assert resp.status == 200
    assert health["status"] == "ok" and health["agents"] == {"total": 1, "stale": 0}
    assert bot.service is not None
    assert [a.host for a in await bot.service.hosts()] == ["web-1"]
    async with http.get(bot.url + "/metrics") as resp:
        text = await resp.text()
    assert 'kernbot_bot_outbox{status="pending"}' in text


async def test_healthz_shouts_when_slack_rejects_the_token(
    tmp_path: Path, slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    settings = bot_settings(tmp_path, slack)
    settings = settings.model_copy(update={"slack_bot_token": SecretStr("xoxb-revoked")})
    bot = build_bot(settings)
    await bot.start()
    try:
        body = EventBatch(host="h", events=[sample_oom()]).model_dump_json()
        async with http.post(bot.url + "/v1/events", data=body) as resp:
            assert resp.status == 200
        await wait_for(lambda: bot.delivery.health.permanent_error is not None)
        async with http.get(bot.url + "/healthz") as resp:
            health = await resp.json()
        assert health["status"] == "degraded"
        assert "invalid_auth" in health["problems"][0]
        assert health["outbox"]["failed"] == 1
    finally:
        await bot.stop()


async def test_without_slack_alerts_print_to_the_terminal(
    tmp_path: Path, http: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = build_bot(BotSettings(token=TOKEN, listen="127.0.0.1:0", state_dir=tmp_path))  # type: ignore[arg-type]
    await bot.start()
    try:
        assert bot.notifier.name == "console"
        body = EventBatch(host="h", events=[sample_oom(host="laptop")]).model_dump_json()
        async with http.post(bot.url + "/v1/events", data=body) as resp:
            assert resp.status == 200
        await wait_for(lambda: bot.delivery.health.delivered == 1)
    finally:
        await bot.stop()
    assert "laptop" in capsys.readouterr().out


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "KERNBOT_STATE_DIR": str(tmp_path),
        "KERNBOT_DATABASE_URL": "postgresql+psycopg://kernbot:pw@127.0.0.1:9/none",
    }
    res = subprocess.run(
        [sys.executable, "-m", "kernbot", "bot"], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 2
    assert "kernbot bot: database postgresql+psycopg://kernbot:***@127.0.0.1:9" in res.stderr
    assert "Traceback" not in res.stderr


class SwallowsOneCancel:
    """A notifier whose call, like `asyncio.wait_for` on Python 3.11 when the cancellation lands
    as the wrapped call completes (cpython gh-86296), returns normally once despite cancel()."""

    name = "swallows-cancel"

    def __init__(self) -> None:
        self.calls = 0
        self.swallowed = 0

    async def post(
        self, channel: str | None, message: Message, thread: PostedRef | None = None
    ) -> PostedRef:
        self.calls += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed += 1
        return PostedRef(channel=channel or "C0", ts=f"{self.calls}.0")

    async def update(self, ref: PostedRef, message: Message) -> None:
        await self.post(ref.channel, message)


async def test_stop_ends_even_when_a_slack_call_swallows_the_cancel(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    notifier = SwallowsOneCancel()
    settings = BotSettings(token=TOKEN, listen="127.0.0.1:0", state_dir=tmp_path)  # type: ignore[arg-type]
    bot = build_bot(settings, notifier=notifier)
    await bot.start()
    events = [sample_oom(id=f"c:{i}", host=f"h{i}") for i in range(3)]
    async with http.post(
        bot.url + "/v1/events", data=EventBatch(host="h", events=events).model_dump_json()
    ) as resp:
        assert resp.status == 200
    await wait_for(lambda: notifier.calls == 1)  # a Slack call in flight, more queued
    stopping = asyncio.create_task(bot.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)
    if not done:  # clean up without the fix's help: cancel the worker until it ends
        for task in asyncio.all_tasks():
            if task.get_name() == "kernbot-delivery":
                task.cancel()
        await stopping
    assert done, "Bot.stop() hung on a delivery task that swallowed its cancellation"
    assert notifier.swallowed == 1 and notifier.calls == 2


async def test_a_newer_wire_major_is_refused_with_upgrade_advice(
    bot: Bot, slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    """A body from a newer major (even one this bot could half parse) gets 422 'upgrade'."""
    newer = WIRE_VERSION + 1
    parsable = EventBatch(host="h", events=[sample_oom()]).model_dump(mode="json")
    parsable["version"] = newer
    unparsable = {"version": newer, "host": "h", "events": [{"kind": "oom_kill", "pid": "x"}]}
    one_event = EventBatch(host="h", events=[sample_oom(version=newer)]).model_dump(mode="json")
    for body in (parsable, unparsable, one_event):
        async with http.post(bot.url + "/v1/events", json=body) as resp:
            assert resp.status == 422
            answer = await resp.json()
        assert answer["upgrade"] is True
        assert f"wire version {newer}" in answer["error"] and "upgrade" in answer["error"]
    await asyncio.sleep(0.3)
    assert slack.messages == []


async def test_fields_from_a_newer_agent_of_the_same_major_are_kept(
    bot: Bot, slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    body = EventBatch(host="h", events=[sample_oom()]).model_dump(mode="json")
    event = body["events"][0]
    event["psi_cgroup"] = {"some_avg10": 3.5}  # a field this bot does not know
    event["context"]["numa_nodes"] = 2
    async with http.post(bot.url + "/v1/events", json=body) as resp:
        assert resp.status == 200, await resp.text()
    await wait_for(lambda: len(slack.messages) == 1)
    kept = EventBatch.model_validate(body).events[0]
    assert kept.model_dump()["psi_cgroup"] == {"some_avg10": 3.5}
    assert kept.context.model_dump()["numa_nodes"] == 2


async def test_an_agent_newer_than_the_bot_keeps_its_events(
    bot: Bot, tmp_path: Path, slack: FakeSlack
) -> None:
    """The shipper sends the wire model; a bot that answers 'upgrade' does not lose events."""
    box = Outbox(tmp_path / "o.db")
    newer = sample_oom(id="b:1", version=WIRE_VERSION + 1).model_dump(mode="json")
    box.put("b:1", 0, "oom_kill", newer)
    ship = Shipper(box, bot_url=bot.url, token=TOKEN, host="h", metrics=AgentMetrics())
    try:
        assert not await ship.ship_once()
        assert box.depth() == 1 and "older than this agent" in (ship.last_error or "")
        box.drop(box.peek(1))
        box.put("b:2", 0, "oom_kill", sample_oom(id="b:2").model_dump(mode="json"))
        assert await ship.ship_once()
        await wait_for(lambda: len(slack.messages) == 1)
    finally:
        await ship.close()
