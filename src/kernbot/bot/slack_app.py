"""The Slack app: slash commands and the Silence buttons, over HTTP or Socket Mode.

Bolt does the protocol work (signature check -> 401 for forged or stale requests, acks, the
response_url client); this module wires Bolt to kernbot. HTTP mode is one aiohttp route,
`POST /slack/events`, converted at the edge with Bolt's own aiohttp adapter. Socket Mode starts
with the aiohttp app when SLACK_APP_TOKEN is set. The Web API base is KERNBOT_SLACK_API_URL so
GovSlack and the tests' fake Slack work the same way.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.app.async_app import AsyncApp

from kernbot.bot import commands
from kernbot.bot.escape import mrkdwn
from kernbot.bot.ports import FleetQueries, UnknownHost
from kernbot.bot.render import SILENCE_ACTIONS, decode_target
from kernbot.bot.render_answers import render_silence, render_text, render_unknown_host
from kernbot.settings import BotSettings

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


class SlackSetupError(Exception):
    """The Slack settings cannot work (e.g. HTTP mode without a signing secret)."""


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def build_app(settings: BotSettings, queries: FleetQueries) -> AsyncApp:
    """A Bolt app with kernbot's commands and actions registered."""
    token = _secret(settings.slack_bot_token)
    if not token:
        raise SlackSetupError("SLACK_BOT_TOKEN is required for the Slack app")
    base_url = (
        settings.slack_api_url
        if settings.slack_api_url.endswith("/")
        else (settings.slack_api_url + "/")
    )
    # The token goes to Bolt itself: Bolt also reads SLACK_BOT_TOKEN from the environment, and a
    # `client=` beside it makes Bolt warn at every start that the token "will be unused". Bolt's
    # own client is then pointed at KERNBOT_SLACK_API_URL (GovSlack, the tests' fake Slack).
    app = AsyncApp(
        token=token,
        signing_secret=_secret(settings.slack_signing_secret) or "",
        process_before_response=False,
    )
    app.client.base_url = base_url
    _register(app, settings, queries)
    return app


def _register(app: AsyncApp, settings: BotSettings, queries: FleetQueries) -> None:
    async def on_command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        user, channel = command.get("user_id"), command.get("channel_id")
        if not commands.is_allowed(settings, user, channel):
            refusal = commands.refusal()
            await ack(text=refusal.text, blocks=refusal.blocks, response_type="ephemeral")
            return
        await ack()
        message = await commands.answer(
            command.get("command", ""), command.get("text", ""), queries, user_id=user
        )
        await respond(text=message.text, blocks=message.blocks, response_type="ephemeral")

    for name in commands.COMMANDS:
        app.command(name)(on_command)

    async def on_silence(
        ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        user = (body.get("user") or {}).get("id")
        channel = (body.get("channel") or {}).get("id")
        if not commands.is_allowed(settings, user, channel):
            message = commands.refusal()
        else:
            duration = SILENCE_ACTIONS[action["action_id"]]
            target = decode_target(str(action.get("value", "")))
            try:
                message = render_silence(await queries.silence(target, duration, user))
            except UnknownHost as exc:
                message = render_unknown_host(exc)
            except Exception:
                log.exception("silencing %r failed", target)
                message = render_text(f"Could not silence `{mrkdwn(target)}`; see the bot's log.")
        await respond(
            text=message.text,
            blocks=message.blocks,
            response_type="ephemeral",
            replace_original=False,
        )

    pattern = re.compile("^(" + "|".join(map(re.escape, SILENCE_ACTIONS)) + ")$")
    app.action(pattern)(on_silence)


def mount(app: web.Application, settings: BotSettings, queries: FleetQueries) -> None:
    """Serve Slack on `app`: `POST /slack/events` (needs SLACK_SIGNING_SECRET) and, when
    SLACK_APP_TOKEN is set, a Socket Mode connection that lives as long as `app` runs."""
    bolt = build_app(settings, queries)
    app_token = _secret(settings.slack_app_token)
    if settings.slack_signing_secret is not None:

        async def slack_events(request: web.Request) -> web.Response:
            if (
                request.content_length is not None
                and request.content_length > settings.max_body_bytes
            ):
                raise web.HTTPRequestEntityTooLarge(
                    max_size=settings.max_body_bytes, actual_size=request.content_length
                )
            response = await bolt.async_dispatch(await to_bolt_request(request))
            return await to_aiohttp_response(response)

        app.router.add_post(EVENTS_PATH, slack_events)
    elif not app_token:
        raise SlackSetupError(
            "set SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)"
        )
    if app_token:
        app.cleanup_ctx.append(_socket_mode(bolt, app_token))


def _socket_mode(bolt: AsyncApp, app_token: str) -> Any:
    async def run(app: web.Application) -> Any:
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(bolt, app_token)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("Slack Socket Mode connected")
        yield
        await handler.close_async()  # type: ignore[no-untyped-call]

    return run
