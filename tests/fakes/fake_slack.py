"""A fake Slack Web API: a real aiohttp server on loopback, per Slack's documented contract.

What it implements (only what kernbot calls):
- `POST /api/<method>`, JSON or form-encoded bodies; token from `Authorization: Bearer` (or a
  `token` form field). Missing -> `not_authed`, wrong -> `invalid_auth`, `ok:false` envelopes.
- auth.test, chat.postMessage (channel by ID or `#name`, thread_ts), chat.update,
  chat.getPermalink (GET, as slack_sdk sends it),
  chat.postEphemeral, apps.connections.open (needs an `xapp-` token) and the websocket it
  hands out: `hello`, then envelopes sent with `socket_send()`, acks kept in `socket_acks`.
- Block Kit limit checks (50 blocks, header 150, section 3000, 10 fields of 2000, button text 75,
  action_id 255, value 2000, unique block_id) -> `invalid_blocks` with the reasons, like Slack.
- Injectable faults: `fail(method, status=429, retry_after=…)`, `fail(method, status=500)`,
  `fail(method, error="channel_not_found")`, `fail(method, delay=…)`.
Everything posted is kept in `messages` (one dict per message, updated in place by chat.update)
and every call in `calls`.

`ResponseUrlRecorder` is a second loopback server standing in for slash-command response_urls.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PERMALINK_BASE = "https://kernbot-test.slack.com/archives/"
"""chat.getPermalink answers `PERMALINK_BASE + channel + "/p" + ts without its dot`."""


@dataclass
class Fault:
    method: str | None
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    delay: float = 0.0
    times: int = 1


@dataclass
class FakeSlack:
    bot_token: str = "xoxb-kernbot-test"
    app_token: str = "xapp-kernbot-test"
    channels: dict[str, str] = field(
        default_factory=lambda: {"C0ALERTS": "alerts", "C0OPS": "ops", "C0OTHER": "other"}
    )
    messages: list[dict[str, Any]] = field(default_factory=list)
    ephemerals: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    socket_mode_url: str | None = None
    socket_acks: list[dict[str, Any]] = field(default_factory=list)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _socket_changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    base_url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api/{method}", self._handle)
        app.router.add_get("/api/{method}", self._handle)  # chat.getPermalink is a GET
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/api/"
        self.socket_mode_url = f"ws://127.0.0.1:{port}/socket"
        self._socket_changed = asyncio.Condition()
        return self.base_url

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- Socket Mode: apps.connections.open hands out this websocket --------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        hello = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0KERNBOT"}}
        await ws.send_json(hello)
        await self._socket_event(lambda: self._sockets.append(ws))
        async for msg in ws:
            if msg.type == web.WSMsgType.TEXT:
                data = json.loads(msg.data)
                await self._socket_event(functools.partial(self.socket_acks.append, data))
        await self._socket_event(lambda: self._sockets.remove(ws))
        return ws

    async def _socket_event(self, change: Any) -> None:
        async with self._socket_changed:
            change()
            self._socket_changed.notify_all()

    async def socket_send(self, envelope: dict[str, Any], within_s: float = 5.0) -> None:
        """Send an envelope to the (first) connected Socket Mode client."""
        async with self._socket_changed:
            await asyncio.wait_for(
                self._socket_changed.wait_for(lambda: bool(self._sockets)), within_s
            )
        await self._sockets[0].send_json(envelope)

    async def socket_ack(self, envelope_id: str, within_s: float = 5.0) -> dict[str, Any]:
        """Wait for the client's acknowledgement of `envelope_id`."""

        def found() -> dict[str, Any] | None:
            return next((a for a in self.socket_acks if a.get("envelope_id") == envelope_id), None)

        async with self._socket_changed:
            await asyncio.wait_for(
                self._socket_changed.wait_for(lambda: found() is not None), within_s
            )
        ack = found()
        assert ack is not None
        return ack

    def fail(self, method: str | None, **kwargs: Any) -> None:
        self.faults.append(Fault(method, **kwargs))

    def posted(self, method: str) -> list[dict[str, Any]]:
        return [params for m, params in self.calls if m == method]

    # --- request handling -------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.method == "GET":
            return dict(request.query)
        if request.content_type == "application/json":
            data = await request.json()
            return dict(data) if isinstance(data, dict) else {}
        form = await request.post()
        params: dict[str, Any] = {k: str(v) for k, v in form.items()}
        for key in ("blocks", "attachments"):
            if isinstance(params.get(key), str):
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    params[key] = "<invalid json>"
        return params

    def _token(self, request: web.Request, params: dict[str, Any]) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :]
        token = params.get("token")
        return str(token) if token else None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await self._params(request)
        token = self._token(request, params)
        self.calls.append((method, params))
        fault = next((f for f in self.faults if f.method in (None, method)), None)
        if fault is not None:
            fault.times -= 1
            if fault.times <= 0:
                self.faults.remove(fault)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status == 429:
                headers = {"Retry-After": str(fault.retry_after or 1)}
                return web.json_response(
                    {"ok": False, "error": "ratelimited"}, status=429, headers=headers
                )
            if fault.status >= 500:
                return web.Response(status=fault.status, text="upstream connect error")
            if fault.error:
                return self._error(fault.error)
        if token is None:
            return self._error("not_authed")
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return self._error("invalid_auth")
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return self._error("unknown_method")
        result: web.StreamResponse = handler(params)
        return result

    @staticmethod
    def _error(error: str, **extra: Any) -> web.Response:
        return web.json_response({"ok": False, "error": error, **extra})

    def _channel(self, value: Any) -> str | None:
        name = str(value or "")
        if name in self.channels:
            return name
        return next((cid for cid, n in self.channels.items() if f"#{n}" == name), None)

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _check_message(self, params: dict[str, Any]) -> web.Response | None:
        blocks = params.get("blocks")
        text = params.get("text")
        if not text and not blocks:
            return self._error("no_text")
        if isinstance(text, str) and len(text) > 40_000:
            return self._error("msg_too_long")
        if blocks is not None:
            errors = validate_blocks(blocks)
            if errors:
                return self._error("invalid_blocks", errors=errors)
        return None

    # --- methods ----------------------------------------------------------------------

    def _m_auth_test(self, params: dict[str, Any]) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "url": "https://kernbot-test.slack.com/",
                "team": "kernbot test",
                "user": "kernbot",
                "team_id": "T0KERNBOT",
                "user_id": "U0KERNBOT",
                "bot_id": "B0KERNBOT",
                "is_enterprise_install": False,
            }
        )

    def _m_chat_postMessage(self, params: dict[str, Any]) -> web.Response:
        channel = self._channel(params.get("channel"))
        if channel is None:
            return self._error("channel_not_found")
        bad = self._check_message(params)
        if bad is not None:
            return bad
        ts = self._next_ts()
        msg = {
            "channel": channel,
            "ts": ts,
            "thread_ts": params.get("thread_ts"),
            "text": params.get("text", ""),
            "blocks": params.get("blocks") or [],
            "edits": 0,
        }
        self.messages.append(msg)
        body = {"type": "message", "text": msg["text"], "ts": ts, "bot_id": "B0KERNBOT"}
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": body})

    def _m_chat_update(self, params: dict[str, Any]) -> web.Response:
        channel = self._channel(params.get("channel"))
        if channel is None:
            return self._error("channel_not_found")
        msg = next(
            (m for m in self.messages if m["channel"] == channel and m["ts"] == params.get("ts")),
            None,
        )
        if msg is None:
            return self._error("message_not_found")
        bad = self._check_message(params)
        if bad is not None:
            return bad
        msg.update(text=params.get("text", ""), blocks=params.get("blocks") or [])
        msg["edits"] += 1
        return web.json_response(
            {"ok": True, "channel": channel, "ts": msg["ts"], "text": msg["text"]}
        )

    def _m_chat_getPermalink(self, params: dict[str, Any]) -> web.Response:
        """Slack's documented answer: the archive URL of a message, `p` + its ts without the
        dot (a reply adds `?thread_ts=…&cid=…`); `message_not_found` for no such message."""
        channel = self._channel(params.get("channel"))
        if channel is None:
            return self._error("channel_not_found")
        msg = next(
            (
                m
                for m in self.messages
                if m["channel"] == channel and m["ts"] == params.get("message_ts")
            ),
            None,
        )
        if msg is None:
            return self._error("message_not_found")
        link = f"{PERMALINK_BASE}{channel}/p{msg['ts'].replace('.', '')}"
        if msg["thread_ts"]:
            link += f"?thread_ts={msg['thread_ts']}&cid={channel}"
        return web.json_response({"ok": True, "channel": channel, "permalink": link})

    def _m_chat_postEphemeral(self, params: dict[str, Any]) -> web.Response:
        channel = self._channel(params.get("channel"))
        if channel is None:
            return self._error("channel_not_found")
        if not params.get("user"):
            return self._error("user_not_in_channel")
        bad = self._check_message(params)
        if bad is not None:
            return bad
        self.ephemerals.append({**params, "channel": channel})
        return web.json_response({"ok": True, "message_ts": self._next_ts()})

    def _m_apps_connections_open(self, params: dict[str, Any]) -> web.Response:
        if self.socket_mode_url is None:
            return self._error("socket_mode_not_enabled")
        return web.json_response({"ok": True, "url": self.socket_mode_url})


_TEXT_TYPES = {"plain_text", "mrkdwn"}


def _text_errors(obj: Any, where: str, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in _TEXT_TYPES:
        return [f"{where}: must be a text object"]
    if plain_only and obj["type"] != "plain_text":
        return [f"{where}: must be plain_text"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"{where}: text must be a non-empty string"]
    if len(text) > limit:
        return [f"{where}: must be less than {limit + 1} characters"]
    return []


def validate_blocks(blocks: Any) -> list[str]:
    """Slack's documented Block Kit limits, as far as kernbot's blocks use them."""
    if not isinstance(blocks, list):
        return ["blocks: must be an array"]
    errors: list[str] = []
    if len(blocks) > 50:
        errors.append("blocks: must be no more than 50 items")
    ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(block, dict):
            errors.append(f"{where}: must be an object")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > 255 or block_id in ids:
                errors.append(f"{where}.block_id: too long or duplicate")
            ids.add(str(block_id))
        kind = block.get("type")
        if kind == "header":
            errors += _text_errors(block.get("text"), f"{where}.text", 150, plain_only=True)
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                errors.append(f"{where}: needs text or fields")
            if "text" in block:
                errors += _text_errors(block["text"], f"{where}.text", 3000)
            fields = block.get("fields", [])
            if len(fields) > 10:
                errors.append(f"{where}.fields: must be no more than 10 items")
            for j, f in enumerate(fields):
                errors += _text_errors(f, f"{where}.fields[{j}]", 2000)
        elif kind == "context":
            elements = block.get("elements", [])
            if not elements or len(elements) > 10:
                errors.append(f"{where}.elements: 1 to 10 items")
            for j, e in enumerate(elements):
                errors += _text_errors(e, f"{where}.elements[{j}]", 3000)
        elif kind == "actions":
            elements = block.get("elements", [])
            if not elements or len(elements) > 25:
                errors.append(f"{where}.elements: 1 to 25 items")
            for j, e in enumerate(elements):
                errors += _button_errors(e, f"{where}.elements[{j}]")
        elif kind != "divider":
            errors.append(f"{where}.type: unsupported block type {kind!r}")
    return errors


def _button_errors(e: Any, where: str) -> list[str]:
    if not isinstance(e, dict) or e.get("type") != "button":
        return [f"{where}: only buttons are expected"]
    errors = _text_errors(e.get("text"), f"{where}.text", 75, plain_only=True)
    action_id = e.get("action_id")
    if not isinstance(action_id, str) or not action_id or len(action_id) > 255:
        errors.append(f"{where}.action_id: 1 to 255 characters")
    value = e.get("value")
    if value is not None and (not isinstance(value, str) or len(value) > 2000):
        errors.append(f"{where}.value: at most 2000 characters")
    if e.get("style") not in (None, "primary", "danger"):
        errors.append(f"{where}.style: primary or danger")
    return errors


@dataclass
class ResponseUrlRecorder:
    """Stands in for Slack's response_url endpoints: records every JSON body posted."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _base: str = ""
    _arrived: asyncio.Condition | None = None

    async def start(self) -> None:
        self._arrived = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/respond/{key}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._base = f"http://127.0.0.1:{self._runner.addresses[0][1]}/respond/"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> ResponseUrlRecorder:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def url(self, key: str = "cmd") -> str:
        return self._base + key

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        body["_key"] = request.match_info["key"]
        assert self._arrived is not None
        async with self._arrived:
            self.posts.append(body)
            self._arrived.notify_all()
        return web.Response(text="ok")

    async def wait_for(self, count: int, within_s: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least `count` bodies arrived; return them all."""
        assert self._arrived is not None
        async with self._arrived:
            await asyncio.wait_for(
                self._arrived.wait_for(lambda: len(self.posts) >= count), within_s
            )
        return list(self.posts)
