"""The agent's HTTP API: what the bot asks a host when someone types `/oom host1` in Slack.

Only converts HTTP to calls on `AgentQueries` and back; every /v1 route and /metrics need the
agent token (`Authorization: Bearer ...`), compared in constant time. /healthz stays open for
liveness probes and says nothing but ok; a caller with the token also gets `findings`: what the
agent may not read on this host (a finding is not a failure, so the status stays 200). Query
parameters are bounded so an answer is never huge.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from aiohttp import web
from pydantic import BaseModel

from kernbot.bearer import CHALLENGE, HEADER, bearer_ok
from kernbot.core.wire import AgentStatus, DmesgResponse, OomResponse, SynResponse, TopResponse
from kernbot.http_guard import complete_request

MAX_TOP = 100
MAX_DMESG_LINES = 2000
MAX_GREP = 200
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class AgentQueries(Protocol):
    def status(self) -> AgentStatus: ...
    def oom(self, since: float | None) -> OomResponse: ...
    def syn(self, since: float | None) -> SynResponse: ...
    def top(self, n: int) -> TopResponse: ...
    def dmesg(self, grep: str | None, lines: int) -> DmesgResponse: ...
    def metrics_text(self) -> bytes: ...
    def health_findings(self) -> list[str]: ...
    def test_alert(self) -> str: ...


def parse_since(text: str | None, now: float) -> float | None:
    """`24h`, `30m`, `2d`, `3600` (seconds ago) or an ISO 8601 time -> epoch seconds."""
    if not text:
        return None
    m = _DURATION.match(text)
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise web.HTTPBadRequest(
            text="since: expected a duration like 30m, 24h, 7d or an ISO 8601 time"
        ) from None


def _int_param(req: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return max(lo, min(hi, int(raw)))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name}: expected an integer") from None


def _json(model: BaseModel) -> web.Response:
    return web.json_response(text=model.model_dump_json())


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(
    queries: AgentQueries, token: str | None, clock: Callable[[], float]
) -> web.Application:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/healthz" and not bearer_ok(request.headers.get(HEADER), token):
            return web.json_response(
                {"error": "unauthorized: send Authorization: Bearer <KERNBOT_TOKEN>"},
                status=401,
                headers=CHALLENGE,
            )
        return await handler(request)

    async def healthz(req: web.Request) -> web.Response:
        if bearer_ok(req.headers.get(HEADER), token):
            return web.json_response({"ok": True, "findings": queries.health_findings()})
        return web.json_response({"ok": True})

    async def status(_: web.Request) -> web.Response:
        return _json(queries.status())

    async def oom(req: web.Request) -> web.Response:
        return _json(queries.oom(parse_since(req.query.get("since"), clock())))

    async def syn(req: web.Request) -> web.Response:
        return _json(queries.syn(parse_since(req.query.get("since"), clock())))

    async def top(req: web.Request) -> web.Response:
        return _json(queries.top(_int_param(req, "n", 10, 1, MAX_TOP)))

    async def dmesg(req: web.Request) -> web.Response:
        grep = req.query.get("grep") or None
        if grep is not None and len(grep) > MAX_GREP:
            raise web.HTTPBadRequest(text=f"grep: at most {MAX_GREP} characters")
        lines = _int_param(req, "lines", 100, 1, MAX_DMESG_LINES)
        return _json(queries.dmesg(grep, lines))

    async def test_alert(_: web.Request) -> web.Response:
        return web.json_response({"queued": queries.test_alert()})

    async def metrics(_: web.Request) -> web.Response:
        from kernbot.agent.metrics import CONTENT_TYPE

        resp = web.Response(body=queries.metrics_text())
        resp.headers["Content-Type"] = CONTENT_TYPE
        return resp

    app = web.Application(middlewares=[complete_request, auth], client_max_size=64 * 1024)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/oom", oom)
    app.router.add_get("/v1/syn", syn)
    app.router.add_get("/v1/top", top)
    app.router.add_get("/v1/dmesg", dmesg)
    app.router.add_post("/v1/test-alert", test_alert)
    return app
