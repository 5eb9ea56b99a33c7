"""Slash commands: parse `/oom`, `/synflood` and `/kernbot ...`, ask FleetQueries, render an answer.

Nothing here knows Bolt or HTTP: `slack_app` acks within Slack's 3 seconds and delivers what
`answer()` returns through the command's response_url. Every failure becomes a sentence the
user can act on (unknown host with close names, bad duration, agent down) instead of an error.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable

from kernbot.bot import render_answers as ra
from kernbot.bot.escape import mrkdwn
from kernbot.bot.ports import FleetQueries, Message, UnknownHost
from kernbot.errors import KernbotError
from kernbot.settings import BotSettings

log = logging.getLogger(__name__)

COMMANDS = ("/oom", "/synflood", "/kernbot")
DMESG_LINES = 50
MAX_FILTER = 100
MAX_SILENCE_S = 30 * 86400.0
ANSWER_TIMEOUT_S = 25.0
"""A response_url stays valid for 30 minutes, but nobody waits that long for an answer."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = re.compile(r"(\d+)\s*([smhdw])")


class UsageError(KernbotError):
    """The command was typed wrong; the message says how to type it right."""


def parse_duration(text: str) -> float:
    """`30m`, `2h`, `1d`, `1h30m` -> seconds."""
    compact = text.strip().lower()
    parts = _DURATION_RE.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact.replace(" ", ""):
        raise UsageError(
            f"`{mrkdwn(text)}` is not a duration: use a number and a unit (s, m, h, d, w), "
            "e.g. `30m`, `2h`, `1d`."
        )
    seconds = float(sum(int(n) * _UNITS[u] for n, u in parts))
    if seconds <= 0 or seconds > MAX_SILENCE_S:
        raise UsageError("A silence lasts between 1 second and 30 days.")
    return seconds


def is_allowed(settings: BotSettings, user_id: str | None, channel_id: str | None) -> bool:
    """BotSettings.allowed_users / allowed_channels; an empty list allows everyone."""
    if settings.allowed_users and user_id not in settings.allowed_users:
        return False
    return not (settings.allowed_channels and channel_id not in settings.allowed_channels)


def refusal() -> Message:
    return ra.render_text(
        "Sorry, you can't use kernbot here. Ask your SRE team to add you (or this channel) "
        "to kernbot's allowed users."
    )


def _host(args: list[str], usage: str) -> str:
    if not args:
        raise UsageError(f"Which host? Usage: `{usage}`")
    return args[0]


async def _oom(args: list[str], q: FleetQueries, user: str | None) -> Message:
    if not args:
        return ra.render_oom_fleet(await q.oom_fleet(86400.0))
    return ra.render_oom_host(await q.oom_host(args[0]))


async def _synflood(args: list[str], q: FleetQueries, user: str | None) -> Message:
    return ra.render_syn_host(await q.syn_host(_host(args, "/synflood HOST")))


async def _kernbot(args: list[str], q: FleetQueries, user: str | None) -> Message:
    sub, rest = (args[0].lower(), args[1:]) if args else ("help", [])
    if sub == "hosts":
        return ra.render_hosts(await q.hosts())
    if sub == "risks":
        return ra.render_risks(await q.risks_fleet())
    if sub == "top":
        return ra.render_top(await q.top(_host(rest, "/kernbot top HOST"), 10))
    if sub == "dmesg":
        host = _host(rest, "/kernbot dmesg HOST [FILTER]")
        grep = " ".join(rest[1:])[:MAX_FILTER] or None
        return ra.render_dmesg(await q.dmesg(host, grep, DMESG_LINES), grep)
    if sub == "silence":
        if len(rest) != 2:
            raise UsageError(
                "Usage: `/kernbot silence TARGET DURATION`, TARGET is a host, `host:NAME` "
                "or `pod:NAMESPACE/NAME`, e.g. `/kernbot silence host:web-1 2h`."
            )
        seconds = parse_duration(rest[1])
        return ra.render_silence(await q.silence(rest[0], seconds, user))
    if sub == "help":
        return ra.render_help()
    raise UsageError(f"I don't know `{mrkdwn(sub)}`. Try `/kernbot help`.")


Handler = Callable[[list[str], FleetQueries, "str | None"], Awaitable[Message]]
HANDLERS: dict[str, Handler] = {"/oom": _oom, "/synflood": _synflood, "/kernbot": _kernbot}


async def answer(
    command: str,
    text: str,
    queries: FleetQueries,
    *,
    user_id: str | None = None,
    timeout_s: float = ANSWER_TIMEOUT_S,
) -> Message:
    """The full answer to one slash command; never raises."""
    handler = HANDLERS.get(command)
    if handler is None:
        return ra.render_text(f"Unknown command `{mrkdwn(command)}`.")
    try:
        async with asyncio.timeout(timeout_s):  # not wait_for: see slack_notifier._call
            return await handler(text.split(), queries, user_id)
    except UnknownHost as exc:
        return ra.render_unknown_host(exc)
    except UsageError as exc:
        return ra.render_text(str(exc))
    except TimeoutError:
        return ra.render_text("The bot took too long to gather that answer; try again shortly.")
    except Exception:
        log.exception("slash command %s failed", command)
        return ra.render_text("Something went wrong answering that; the bot logged the details.")
