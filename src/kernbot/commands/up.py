"""`kernbot up`: the agent and the bot in one process on this machine, for a first look.

The embedded defaults need no setup: the bot's SQLite file and the agent's outbox live in the
state dir, the shared token is KERNBOT_TOKEN or one generated once and kept (0600) in the state
dir, and both servers listen on loopback. With SLACK_BOT_TOKEN (plus KERNBOT_SLACK_CHANNEL) the
alerts go to Slack; otherwise they are printed here as they happen, under a live status line when
this is a terminal.

Exit codes: 0 after SIGTERM/SIGINT (everything stopped within 5 s), 1 when the kernel log cannot
be read (the message says what to do), 2 for invalid settings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from kernbot.hostport import HostPortError, parse_host_port, url_host
from kernbot.state_files import private_dir

if TYPE_CHECKING:
    from kernbot.agent.app import Agent
    from kernbot.settings import AgentSettings, BotSettings, UpSettings
    from kernbot.status_line import Snapshot, StatusAwareNotifier

log = logging.getLogger("kernbot.commands.up")

TOKEN_FILE = "token"
STOP_BUDGET_S = 4.5
"""SIGTERM to exit: the agent ships what it has while the bot still listens, then the bot stops."""
GIVE_UP_S = 4.9
"""Last resort: a part that ignores its cancellation must not keep the process past 5 s."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML settings file (else KERNBOT_CONFIG)")


def load_or_create_token(state_dir: Path) -> str:
    """The token kept in `state_dir`, created (0600, exclusive create) on first use."""
    path = state_dir / TOKEN_FILE
    private_dir(state_dir)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        kept = path.read_text(encoding="utf-8").strip()
        if kept:
            if path.stat().st_mode & 0o077:
                log.warning("%s is readable by others; chmod 600 it", path)
            return kept
        path.unlink()
        return load_or_create_token(state_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
        f.flush()
        os.fsync(f.fileno())
    return token


def is_loopback(listen: str) -> bool:
    try:
        host = parse_host_port(listen, default_host="")[0]
    except HostPortError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fields(up: UpSettings, cls: type[Any]) -> dict[str, Any]:
    return {name: getattr(up, name) for name in cls.model_fields}


def bot_settings(up: UpSettings, token: str) -> BotSettings:
    """The bot part of `up`'s settings (already validated, so no second read of the env)."""
    from pydantic import SecretStr

    from kernbot.settings import BotSettings

    values = _fields(up, BotSettings) | {"listen": up.listen, "token": SecretStr(token)}
    return BotSettings.model_construct(**values)


def loopback_url(listen: str, port: int) -> str:
    """How this process reaches its own server: the listen host, or loopback for `0.0.0.0`."""
    host = parse_host_port(listen, default_host="127.0.0.1")[0]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return f"http://{url_host(host)}:{port}"


def agent_settings(up: UpSettings, token: str, bot_url: str) -> AgentSettings:
    """The agent part: it listens on `agent_listen`, ships to the embedded bot and tells it to
    ask back over loopback (unless ADVERTISE_URL says otherwise)."""
    from pydantic import SecretStr

    from kernbot.settings import AgentSettings

    values = _fields(up, AgentSettings) | {
        "listen": up.agent_listen,
        "bot_url": bot_url,
        "token": SecretStr(token),
    }
    host, port = parse_host_port(up.agent_listen, default_host="")
    if up.advertise_url is None and host in ("0.0.0.0", "::") and port != 0:
        values["advertise_url"] = loopback_url(up.agent_listen, port)
    return AgentSettings.model_construct(**values)


def check(up: UpSettings) -> list[str]:
    """Problems pydantic cannot see: combinations that would lose alerts."""
    problems = []
    if not isinstance(logging.getLevelName(up.log_level.upper()), int):
        problems.append(f"KERNBOT_LOG_LEVEL: not a log level (got {up.log_level!r})")
    if up.slack_bot_token is not None and not up.slack_channel and not up.routes:
        problems.append(
            "KERNBOT_SLACK_CHANNEL: required when SLACK_BOT_TOKEN is set (the channel ID "
            "alerts are posted to, e.g. C0123ABCD)"
        )
    for name, value in (("KERNBOT_LISTEN", up.listen), ("KERNBOT_AGENT_LISTEN", up.agent_listen)):
        try:
            parse_host_port(value)
        except HostPortError as exc:
            problems.append(f"{name}: {exc}")
    return problems


def _snapshot(agent: Agent | None, notifier: StatusAwareNotifier) -> Snapshot:
    from kernbot.core.risk.summary import headline
    from kernbot.status_line import Snapshot

    if agent is None:
        return Snapshot(last_alert=notifier.last_alert, last_alert_at=notifier.last_alert_at)
    stats = agent.pipeline.stats
    src = agent.source
    return Snapshot(
        records_read=stats.records_read,
        events=dict(stats.events),
        source=agent.source_spec,
        source_healthy=bool(src is not None and src.healthy),
        last_alert=notifier.last_alert,
        last_alert_at=notifier.last_alert_at,
        at_risk=[headline(r) for r in agent.risk.risks()] if agent.risk is not None else [],
    )


async def serve(up: UpSettings, *, out: TextIO, err: TextIO, interactive: bool) -> int:
    """Run agent and bot until SIGTERM/SIGINT; the exit code."""
    from kernbot.agent.app import build_agent
    from kernbot.agent.sources import SourceUnavailable
    from kernbot.bot.console_notifier import ConsoleNotifier
    from kernbot.bot.notifiers import build_notifier
    from kernbot.commands.bot import build_bot
    from kernbot.status_line import ClearBeforeLogging, StatusAwareNotifier, StatusLine

    token = up.token.get_secret_value() if up.token else load_or_create_token(up.state_dir)
    bset = bot_settings(up, token)
    slack = up.slack_bot_token is not None
    inner = build_notifier(bset, "slack") if slack else ConsoleNotifier(out)
    agent: Agent | None = None
    notifier = StatusAwareNotifier(inner, None)
    status = StatusLine(err, lambda: _snapshot(agent, notifier), interactive=interactive)
    notifier.status = status
    for handler in logging.getLogger().handlers:
        handler.addFilter(ClearBeforeLogging(status))

    bot = build_bot(bset, notifier=notifier)
    try:
        await bot.start()
    except OSError as exc:  # e.g. the bot's port is taken
        print(f"kernbot up: cannot serve the bot on {up.listen}: {exc}", file=err)
        await bot.stop()
        return 1
    bot_port = int(bot.url.rpartition(":")[2])
    agent = build_agent(agent_settings(up, token, loopback_url(up.listen, bot_port)))
    loop = asyncio.get_running_loop()
    asked_at: list[float] = []

    def give_up() -> None:
        print("kernbot up: could not stop cleanly within 5 s; exiting", file=err, flush=True)
        os._exit(1)

    def request_stop() -> None:
        if not asked_at:
            loop.call_later(GIVE_UP_S, give_up)
        asked_at.append(loop.time())
        assert agent is not None
        agent.request_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop)
    run = asyncio.create_task(agent.run_forever(), name="kernbot-up-agent")
    status_task = asyncio.create_task(status.run(), name="kernbot-up-status")
    where = f"Slack channel {up.slack_channel}" if slack else "this terminal (stdout)"
    status.clear()
    print(
        f"kernbot up: watching {up.source} on {up.hostname}; alerts go to {where}. "
        f"Bot {bot.url}, agent http://{up.agent_listen}. Ctrl-C stops.",
        file=err,
        flush=True,
    )
    code = 0
    try:
        await run
    except SourceUnavailable as exc:
        status.clear()
        print(f"kernbot up: {exc}\nRun `kernbot doctor` to check this host.", file=err)
        code = 1
    except OSError as exc:  # e.g. the agent's port is taken
        status.clear()
        print(f"kernbot up: {exc}", file=err)
        code = 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        status_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await status_task
        spent = loop.time() - asked_at[0] if asked_at else 0.0
        try:
            await asyncio.wait_for(bot.stop(), max(0.5, STOP_BUDGET_S - spent))
        except TimeoutError:
            print("kernbot up: the bot did not stop in time; exiting anyway", file=err)
    return code


def run(args: argparse.Namespace) -> int:
    from kernbot.logsetup import configure_logging
    from kernbot.settings import SettingsError, UpSettings, load_settings

    try:
        up = load_settings(UpSettings, getattr(args, "config", None))
        problems = check(up)
    except SettingsError as exc:
        problems = exc.problems
    if problems:
        for problem in problems:
            print(f"kernbot up: {problem}", file=sys.stderr)
        return 2
    configure_logging(up.log_level)
    for listen in (up.listen, up.agent_listen):
        if not is_loopback(listen):
            log.warning("%s is not a loopback address: kernbot up is meant for this host", listen)
    interactive = sys.stdout.isatty() and sys.stderr.isatty()
    return asyncio.run(serve(up, out=sys.stdout, err=sys.stderr, interactive=interactive))
