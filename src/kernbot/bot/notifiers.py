"""Which Notifier the bot uses: Slack when a bot token is configured, else the terminal.

A name -> factory table so `kernbot bot` / `kernbot up` pick a notifier without knowing how each
is built; only entry points call `build_notifier`, the rest receives a `ports.Notifier`.
"""

from __future__ import annotations

from collections.abc import Callable

from kernbot.bot.ports import Notifier
from kernbot.settings import BotSettings


def _slack(settings: BotSettings) -> Notifier:
    from kernbot.bot.slack_notifier import SlackNotifier

    if settings.slack_bot_token is None:
        raise ValueError("the slack notifier needs SLACK_BOT_TOKEN")
    return SlackNotifier(
        settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        default_channel=settings.slack_channel,
    )


def _console(settings: BotSettings) -> Notifier:
    from kernbot.bot.console_notifier import ConsoleNotifier

    return ConsoleNotifier()


NOTIFIERS: dict[str, Callable[[BotSettings], Notifier]] = {"slack": _slack, "console": _console}


def build_notifier(settings: BotSettings, name: str | None = None) -> Notifier:
    """`name` from NOTIFIERS, or `slack` when a bot token is set and `console` otherwise."""
    chosen = name or ("slack" if settings.slack_bot_token is not None else "console")
    return NOTIFIERS[chosen](settings)
