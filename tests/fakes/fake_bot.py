"""A real aiohttp server on loopback standing in for the kernbot bot: records what agents POST.

Tests run the real agent (often as a subprocess) against it. `down()` closes the listening socket
(connection refused, a real outage) and `up()` reopens it on the same port; `status` makes it
answer an error code instead. Events are validated with the wire models, like the real bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from kernbot.core.wire import EventBatch, Heartbeat


class FakeBot:
    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.events: list[dict[str, Any]] = []
        """Every event received, in arrival order, with `_received` (time.monotonic())."""
        self.heartbeats: list[dict[str, Any]] = []
        self.posts = 0
        self.unauthorized = 0
        self.refused = 0
        """Posts answered 422 because a body did not validate."""
        self.status: int | None = None
        """When set, answer every POST with this HTTP status (and record nothing)."""
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, f"Bearer {self.token}".encode())

    async def _events(self, request: web.Request) -> web.Response:
        self.posts += 1
        if not self._authorized(request):
            self.unauthorized += 1
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.status is not None:
            return web.json_response({"error": "injected"}, status=self.status)
        try:  # as the real bot: JSON mode, where the wire bounds apply; 422 naming the field
            batch = EventBatch.model_validate_json(await request.read())
        except ValidationError as exc:
            self.refused += 1
            return web.json_response({"error": str(exc)[:2000]}, status=422)
        now = time.monotonic()
        for ev in batch.events:
            body = ev.model_dump(mode="json")
            body["_received"] = now
            self.events.append(body)
        self._changed.set()
        return web.json_response({"version": 1, "accepted": len(batch.events), "duplicates": 0})

    async def _heartbeat(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            self.unauthorized += 1
            return web.json_response({"error": "unauthorized"}, status=401)
        hb = Heartbeat.model_validate(await request.json())
        self.heartbeats.append(hb.model_dump(mode="json"))
        self._changed.set()
        return web.json_response({"ok": True})

    async def start(self) -> FakeBot:
        await self.up()
        return self

    async def up(self) -> None:
        """Listen (again, on the same port after `down()`)."""
        app = web.Application()
        app.router.add_post("/v1/events", self._events)
        app.router.add_post("/v1/heartbeat", self._heartbeat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            server: Any = site._server
            self.port = server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        """A real outage: the port refuses connections and open keep-alive connections close."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def stop(self) -> None:
        await self.down()

    def matching(self, pred: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [e for e in self.events if pred(e)]

    async def wait_for(
        self,
        pred: Callable[[dict[str, Any]], bool],
        timeout: float,  # noqa: ASYNC109
        count: int = 1,
    ) -> list[dict[str, Any]]:
        """Events matching `pred` once at least `count` arrived (or what is there at timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(pred)
            left = deadline - time.monotonic()
            if len(found) >= count or left <= 0:
                return found
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))
