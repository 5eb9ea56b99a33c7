"""The agent API served by a real aiohttp server on loopback, answering from a fake agent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from kernbot.agent.api import build_app, parse_since
from kernbot.agent.history import RecentLines
from kernbot.core.wire import (
    AgentStatus,
    DmesgResponse,
    OomResponse,
    ProcInfo,
    SynResponse,
    TopResponse,
)

NOW = 1_700_000_000.0


class FakeAgent:
    def __init__(self) -> None:
        self.since: list[float | None] = []
        self.recent = RecentLines(100)
        for i in range(50):
            self.recent.add(f"<!channel> line {i}")

    def status(self) -> AgentStatus:
        return AgentStatus(host="h1", agent_version="0", source="kmsg", records_read=7)

    def oom(self, since: float | None) -> OomResponse:
        self.since.append(since)
        return OomResponse(host="h1")

    def syn(self, since: float | None) -> SynResponse:
        self.since.append(since)
        return SynResponse(host="h1")

    def top(self, n: int) -> TopResponse:
        return TopResponse(host="h1", processes=[ProcInfo(pid=i, comm="x") for i in range(n)])

    def dmesg(self, grep: str | None, lines: int) -> DmesgResponse:
        out, more = self.recent.tail(lines, grep)
        return DmesgResponse(host="h1", lines=out, truncated=more)

    def metrics_text(self) -> bytes:
        return b"kernbot_agent_records_read_total 7.0\n"

    def health_findings(self) -> list[str]:
        return ["cannot open /host/proc/1/ns/net: Permission denied"]

    def test_alert(self) -> str:
        return "test:1"


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, FakeAgent]]:
    agent = FakeAgent()
    runner = web.AppRunner(build_app(agent, "s3cret", lambda: NOW))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", agent
    await runner.cleanup()


AUTH = {"Authorization": "Bearer s3cret"}


@pytest.mark.parametrize(
    "path", ["/v1/status", "/v1/oom", "/v1/syn", "/v1/top", "/v1/dmesg", "/metrics"]
)
async def test_every_query_needs_the_token(served: tuple[str, FakeAgent], path: str) -> None:
    url, _ = served
    async with aiohttp.ClientSession() as s:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            async with s.get(url + path, headers=headers) as r:
                assert r.status == 401
        async with s.get(url + path, headers=AUTH) as r:
            assert r.status == 200


async def test_healthz_is_open_and_says_only_ok_without_the_token(
    served: tuple[str, FakeAgent],
) -> None:
    url, _ = served
    async with aiohttp.ClientSession() as s, s.get(url + "/healthz") as r:
        assert r.status == 200 and (await r.json()) == {"ok": True}
    async with aiohttp.ClientSession(headers=AUTH) as s, s.get(url + "/healthz") as r:
        assert r.status == 200
        assert (await r.json()) == {
            "ok": True,
            "findings": ["cannot open /host/proc/1/ns/net: Permission denied"],
        }


async def test_query_parameters_are_bounded(served: tuple[str, FakeAgent]) -> None:
    url, agent = served
    async with aiohttp.ClientSession(headers=AUTH) as s:
        async with s.get(url + "/v1/top?n=100000") as r:
            assert len(TopResponse.model_validate(await r.json()).processes) == 100
        async with s.get(url + "/v1/top?n=abc") as r:
            assert r.status == 400
        async with s.get(url + "/v1/dmesg?lines=3&grep=LINE%204") as r:
            body = DmesgResponse.model_validate(await r.json())
            assert body.lines == [f"<!channel> line {i}" for i in (47, 48, 49)]
            assert body.truncated
        async with s.get(url + "/v1/dmesg?grep=" + "x" * 500) as r:
            assert r.status == 400
        async with s.get(url + "/v1/oom?since=2h") as r:
            assert r.status == 200
        async with s.get(url + "/v1/syn?since=tomorrow") as r:
            assert r.status == 400
    assert agent.since == [NOW - 7200]


def test_since_accepts_durations_seconds_and_iso_times() -> None:
    assert parse_since(None, NOW) is None
    assert parse_since("30m", NOW) == NOW - 1800
    assert parse_since("7d", NOW) == NOW - 7 * 86400
    assert parse_since("3600", NOW) == NOW - 3600
    assert parse_since("2023-11-14T22:13:20Z", NOW) == NOW
