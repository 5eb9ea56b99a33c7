"""Fake kernbot agents: real aiohttp servers on loopback answering the agent API (wire models).

One `AgentFarm` runs any number of agents, each on its own port, all from one runner, so a test
or benchmark can stand up hundreds. `slow` hosts answer after `delay_s`; `down` hosts refuse.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from kernbot.core.events import OomKillEvent, OomRiskEvent
from kernbot.core.wire import DmesgResponse, OomResponse, ProcInfo, SynResponse, TopResponse


@dataclass
class AgentFarm:
    token: str
    events: dict[str, list[OomKillEvent]] = field(default_factory=dict)
    risks: dict[str, list[OomRiskEvent]] = field(default_factory=dict)
    slow: set[str] = field(default_factory=set)
    delay_s: float = 10.0
    urls: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    _runner: web.AppRunner | None = None
    _by_port: dict[int, str] = field(default_factory=dict)

    async def start(self, hosts: list[str]) -> dict[str, str]:
        app = web.Application()
        app.router.add_get("/v1/{what}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for host in hosts:
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._by_port[port] = host
            self.urls[host] = f"http://127.0.0.1:{port}"
        return self.urls

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "bad token"}, status=401)
        port = request.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
        host = self._by_port[port]
        if host in self.slow:
            await asyncio.sleep(self.delay_s)
        what = request.match_info["what"]
        body: OomResponse | SynResponse | TopResponse | DmesgResponse
        if what == "oom":
            body = OomResponse(
                host=host, events=self.events.get(host, []), risks=self.risks.get(host, [])
            )
        elif what == "syn":
            body = SynResponse(host=host, sysctls={"net.ipv4.tcp_syncookies": 1})
        elif what == "top":
            n = int(request.query.get("n", "10"))
            procs = [ProcInfo(pid=100 + i, comm=f"proc{i}", oom_score=900 - i) for i in range(20)]
            body = TopResponse(host=host, processes=procs[:n])
        elif what == "dmesg":
            grep = request.query.get("grep")
            lines = [f"line {i} on {host}" for i in range(5)] + ["Out of memory: Killed process"]
            body = DmesgResponse(host=host, lines=[x for x in lines if not grep or grep in x])
        else:
            return web.json_response({"error": "no such endpoint"}, status=404)
        return web.Response(body=body.model_dump_json(), content_type="application/json")
