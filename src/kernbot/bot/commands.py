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
from dataclasses import dataclass

from kernbot.bot import render_answers as ra
from kernbot.bot import silences
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


@dataclass(frozen=True, slots=True)
class Access:
    """Who may do what beyond running commands at all (BotSettings.allowed_users).

    Reading a host's kernel log is a privilege on the host (kernel.dmesg_restrict=1), so it is
    one here: admins and KERNBOT_DMESG_USERS (`*`: everyone allowed to use commands). Silencing
    everything (a glob) or for longer than KERNBOT_MAX_SILENCE needs an admin; with no admins
    set, nobody may."""

    admin_users: frozenset[str] = frozenset()
    dmesg_users: frozenset[str] = frozenset()
    max_silence_s: float = 7 * 86400.0

    @classmethod
    def from_settings(cls, settings: BotSettings) -> Access:
        return cls(
            frozenset(settings.admin_users),
            frozenset(settings.dmesg_users),
            settings.max_silence_s(),
        )

    def is_admin(self, user: str | None) -> bool:
        return user is not None and user in self.admin_users

    def may_dmesg(self, user: str | None) -> bool:
        if self.is_admin(user) or "*" in self.dmesg_users:
            return True
        return user is not None and user in self.dmesg_users

    def check_silence(self, target: str, seconds: float, user: str | None) -> None:
        """UsageError naming the setting when `user` may not set this silence."""
        if self.is_admin(user):
            return
        if silences.is_fleet_wide(target):
            raise UsageError(
                f"Silencing `{mrkdwn(target)}` could silence the whole fleet: only kernbot admins "
                "(KERNBOT_ADMIN_USERS) may use patterns. Name one host, pod or namespace."
            )
        if seconds > self.max_silence_s:
            raise UsageError(
                f"Silences longer than {_human_s(self.max_silence_s)} (KERNBOT_MAX_SILENCE) need "
                "a kernbot admin (KERNBOT_ADMIN_USERS); choose a shorter one."
            )


def _human_s(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


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


async def _oom(args: list[str], q: FleetQueries, user: str | None, access: Access) -> Message:
    if not args:
        return ra.render_oom_fleet(await q.oom_fleet(86400.0))
    return ra.render_oom_host(await q.oom_host(args[0]))


async def _synflood(args: list[str], q: FleetQueries, user: str | None, access: Access) -> Message:
    return ra.render_syn_host(await q.syn_host(_host(args, "/synflood HOST")))


async def _kernbot(args: list[str], q: FleetQueries, user: str | None, access: Access) -> Message:
    sub, rest = (args[0].lower(), args[1:]) if args else ("help", [])
    if sub == "hosts":
        return ra.render_hosts(await q.hosts())
    if sub == "risks":
        return ra.render_risks(await q.risks_fleet())
    if sub == "top":
        return ra.render_top(await q.top(_host(rest, "/kernbot top HOST"), 10))
    if sub == "dmesg":
        if not access.may_dmesg(user):
            return ra.render_text(
                "Reading a host's kernel log is a privilege (hosts set kernel.dmesg_restrict=1 so "
                "that unprivileged users cannot): ask your SRE team to add your Slack user ID to "
                "KERNBOT_DMESG_USERS (or KERNBOT_ADMIN_USERS)."
            )
        host = _host(rest, "/kernbot dmesg HOST [FILTER]")
        grep = " ".join(rest[1:])[:MAX_FILTER] or None
        return ra.render_dmesg(await q.dmesg(host, grep, DMESG_LINES), grep)
    if sub == "silence":
        if len(rest) < 2:
            raise UsageError(
                "Usage: `/kernbot silence TARGET DURATION [REASON]`, TARGET is a host, "
                "`host:NAME`, `pod:NAMESPACE/NAME` or `namespace:NAME`, e.g. "
                "`/kernbot silence host:web-1 2h kernel upgrade`."
            )
        seconds = parse_duration(rest[1])
        access.check_silence(rest[0], seconds, user)
        reason = " ".join(rest[2:]) or None
        return ra.render_silence(await q.silence(rest[0], seconds, user, reason))
    if sub == "silences":
        return ra.render_silences(await q.silences())
    if sub == "unsilence":
        if len(rest) != 1:
            raise UsageError(
                "Usage: `/kernbot unsilence ID|TARGET`; `/kernbot silences` lists ids."
            )
        return ra.render_unsilenced(rest[0], await q.unsilence(rest[0], user))
    if sub == "help":
        return ra.render_help()
    raise UsageError(f"I don't know `{mrkdwn(sub)}`. Try `/kernbot help`.")


Handler = Callable[[list[str], FleetQueries, "str | None", Access], Awaitable[Message]]
HANDLERS: dict[str, Handler] = {"/oom": _oom, "/synflood": _synflood, "/kernbot": _kernbot}


async def answer(
    command: str,
    text: str,
    queries: FleetQueries,
    *,
    user_id: str | None = None,
    timeout_s: float = ANSWER_TIMEOUT_S,
    access: Access | None = None,
) -> Message:
    """The full answer to one slash command; never raises."""
    handler = HANDLERS.get(command)
    if handler is None:
        return ra.render_text(f"Unknown command `{mrkdwn(command)}`.")
    try:
        async with asyncio.timeout(timeout_s):  # not wait_for: see slack_notifier._call
            return await handler(text.split(), queries, user_id, access or Access())
    except UnknownHost as exc:
        return ra.render_unknown_host(exc)
    except UsageError as exc:
        return ra.render_text(str(exc))
    except TimeoutError:
        return ra.render_text("The bot took too long to gather that answer; try again shortly.")
    except Exception:
        log.exception("slash command %s failed", command)
        return ra.render_text("Something went wrong answering that; the bot logged the details.")
