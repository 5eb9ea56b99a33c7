"""Slow and greedy clients cannot hold the agent's or the bot's HTTP server.

aiohttp waits forever for a request whose headers never finish (slowloris) and accepts any number
of connections. `GuardedSite` is a TCPSite whose connections are wrapped: a connection that has
not sent a complete request (headers and body) within `request_timeout_s` of its first byte (or
of connecting) is closed, and connections beyond `max_connections` are closed at once. The
`complete_request` middleware reads the body under the same deadline, then disarms the timer, so
a slow handler (a slash command gathering answers) is never cut off. Idle keep-alive connections
close after aiohttp's keepalive_timeout, set low.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 256
KEEPALIVE_TIMEOUT_S = 15.0
_LIVE: dict[asyncio.BaseTransport, _Guarded] = {}
"""Open guarded connections by transport, for the middleware (one event loop per process)."""


class _Guarded(asyncio.Protocol):
    """Delegates to aiohttp's protocol; arms a deadline whenever a request starts arriving."""

    def __init__(self, inner: Any, site: GuardedSite) -> None:
        self.inner = inner
        self.site = site
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0
        self.rejected = False

    # asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.site.active >= self.site.max_connections:
            self.rejected = True
            self.site.refused += 1
            transport.abort()
            return
        self.site.active += 1
        _LIVE[transport] = self
        self.arm()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.rejected:
            return
        if self.timer is None and not getattr(self.inner, "_request_in_progress", False):
            self.arm()  # the next request on a kept-alive connection starts its own clock
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.rejected:
            return None
        result: bool | None = self.inner.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        if self.rejected:
            return
        self.disarm()
        if self.transport is not None:
            _LIVE.pop(self.transport, None)
        self.site.active -= 1
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # the deadline ----------------------------------------------------------------------------
    def arm(self) -> None:
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + self.site.request_timeout_s
        self.timer = loop.call_at(self.deadline, self.expire)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def expire(self) -> None:
        self.timer = None
        self.site.timed_out += 1
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class GuardedSite(web.TCPSite):
    """`web.TCPSite` with the request deadline and the connection cap."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None = None,
        port: int | None = None,
        *,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        **kwargs: Any,
    ) -> None:
        super().__init__(runner, host, port, **kwargs)
        self.request_timeout_s = request_timeout_s
        self.max_connections = max_connections
        self.active = 0
        self.refused = 0
        self.timed_out = 0

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_server(
            lambda: _Guarded(server(), self),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def complete_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the whole body before the deadline, then let the handler take its time."""
    guarded = _LIVE.get(request.transport) if request.transport is not None else None
    if guarded is not None:
        if request.body_exists:
            remaining = max(0.001, guarded.deadline - asyncio.get_running_loop().time())
            try:
                async with asyncio.timeout(remaining):
                    await request.read()
            except TimeoutError:
                guarded.expire()
                raise web.HTTPRequestTimeout(text="request not complete in time") from None
            except web.HTTPRequestEntityTooLarge as exc:
                guarded.disarm()
                return web.json_response(
                    {"error": f"body too large: {exc.text} (setting max_body_bytes)"}, status=413
                )
        guarded.disarm()
    return await handler(request)
