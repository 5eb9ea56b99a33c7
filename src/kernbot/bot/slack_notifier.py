"""Deliver rendered messages to Slack through the Web API (chat.postMessage / chat.update).

slack_sdk's AsyncWebClient does the HTTP; this module's job is the error boundary: every
SlackApiError, aiohttp error and timeout becomes a `ports.DeliveryError` that tells the bot's
delivery loop whether to wait (429 Retry-After), retry (5xx, network) or give up (bad token,
unknown channel). The SDK's own retry handlers are off so that the delivery loop alone decides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from kernbot.bot.ports import DeliveryError, Message, PostedRef

log = logging.getLogger(__name__)

PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "no_text",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "invalid_arguments",
    }
)
"""Errors that retrying the same request cannot fix."""


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
    except AttributeError:
        return None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def translate(exc: BaseException) -> DeliveryError:
    """Map an SDK or transport error to a DeliveryError."""
    if isinstance(exc, SlackApiError):
        resp = exc.response
        status = getattr(resp, "status_code", None) or getattr(resp, "status", None) or 0
        headers = getattr(resp, "headers", None) or {}
        data = getattr(resp, "data", None)
        code = str(data.get("error", "")) if isinstance(data, dict) else ""
        if status == 429 or code == "ratelimited":
            return DeliveryError("ratelimited", retry_after=_retry_after(headers) or 1.0)
        if status >= 500:
            return DeliveryError(f"http_{status}")
        code = code or f"http_{status}"
        return DeliveryError(code, permanent=code in PERMANENT_ERRORS)
    if isinstance(exc, TimeoutError):
        return DeliveryError("timeout")
    if isinstance(exc, aiohttp.ClientError):
        return DeliveryError(f"network: {type(exc).__name__}")
    return DeliveryError(f"unexpected: {type(exc).__name__}: {exc}")


class SlackNotifier:
    """`ports.Notifier` over the Slack Web API."""

    name = "slack"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://slack.com/api/",
        default_channel: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if not base_url.endswith("/"):
            base_url += "/"
        self._client = AsyncWebClient(
            token=token, base_url=base_url, timeout=int(max(timeout_s, 1)), retry_handlers=[]
        )
        self._timeout_s = timeout_s
        self.default_channel = default_channel

    async def _call(self, call: Awaitable[Any]) -> Any:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can lose a cancellation that
        # lands as the call completes (cpython gh-86296), and the bot then ignored SIGTERM.
        try:
            async with asyncio.timeout(self._timeout_s):
                return await call
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            raise translate(exc) from exc

    async def post(
        self, channel: str | None, message: Message, thread: PostedRef | None = None
    ) -> PostedRef:
        target = thread.channel if thread is not None else (channel or self.default_channel)
        if not target:
            raise DeliveryError("no_channel_configured", permanent=True)
        resp = await self._call(
            self._client.chat_postMessage(
                channel=target,
                text=message.text,
                blocks=message.blocks or None,
                thread_ts=thread.ts if thread is not None else None,
                unfurl_links=False,
                unfurl_media=False,
            )
        )
        ref = PostedRef(channel=str(resp["channel"]), ts=str(resp["ts"]))
        if thread is None:  # an alert: others (a warning and its kill) link to it
            ref.permalink = await self._permalink(ref)
        return ref

    async def _permalink(self, ref: PostedRef) -> str | None:
        """The message's permalink (chat.getPermalink); None when Slack does not give one: the
        alert was posted, and the link is a convenience that must not make it be posted again."""
        try:
            resp = await self._call(
                self._client.chat_getPermalink(channel=ref.channel, message_ts=ref.ts)
            )
        except DeliveryError as exc:
            log.info("chat.getPermalink for %s/%s: %s", ref.channel, ref.ts, exc)
            return None
        link = resp.get("permalink")
        return link if isinstance(link, str) and link.startswith("https://") else None

    async def update(self, ref: PostedRef, message: Message) -> None:
        await self._call(
            self._client.chat_update(
                channel=ref.channel, ts=ref.ts, text=message.text, blocks=message.blocks or None
            )
        )

    async def post_ephemeral(self, channel: str, user: str, message: Message) -> None:
        """Visible to one user only (confirmations of buttons when no response_url exists)."""
        await self._call(
            self._client.chat_postEphemeral(
                channel=channel, user=user, text=message.text, blocks=message.blocks or None
            )
        )
