"""kernbot: explains OOM kills and SYN floods from the kernel log, on a terminal or in Slack.

Each command module exposes `add_arguments(parser)` and `run(args) -> int`; only the chosen one is
imported, so `kernbot scan` never pays for Slack or SQLAlchemy imports. `kernbot COMMAND --help`
says what a command does, its settings and its exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from kernbot import __version__

_C = "kernbot.commands."
COMMANDS: dict[str, tuple[str, str]] = {  # name -> (module under kernbot.commands, help)
    "scan": (_C + "scan", "explain every OOM kill and SYN flood in kernel logs"),
    "agent": (_C + "agent", "follow this host's kernel log and ship events to the bot"),
    "bot": (_C + "bot", "the Slack bot: ingest events, post alerts, answer slash commands"),
    "up": (_C + "up", "agent and bot in one process on this machine"),
    "doctor": (_C + "doctor", "check what kernbot needs on this host and how to fix gaps"),
}

DETAILS: dict[str, tuple[str, str | None, str]] = {
    # name -> (what it does, settings class in kernbot.settings or None, exit codes)
    "scan": (
        "Reads kernel log files (plain or gzip; `-` for stdin), or this host's kernel ring buffer\n"
        "when no file is given, and prints one alert per OOM kill and SYN flood, with the cause\n"
        "and what to do: the same alert Slack would show. --json prints the events instead.",
        None,
        "0 events found, 1 none found, 2 an input could not be read (the others are still\n"
        "scanned and printed)",
    ),
    "agent": (
        "Follows this host's kernel log (/dev/kmsg, journald or kern.log), turns OOM kills and\n"
        "SYN floods into events with live host context (memory, PSI, who is next, listeners),\n"
        "keeps them in an outbox and ships them to the bot; answers the bot's queries.",
        "AgentSettings",
        "0 stopped cleanly (SIGTERM/SIGINT), 1 the log source or port cannot be used (the\n"
        "message names the fix), 2 invalid settings",
    ),
    "bot": (
        "Receives events from agents, groups and rate-limits them into Slack alerts, answers\n"
        "the slash commands (/oom, /synflood, /kernbot) by asking the agents, and warns when an\n"
        "agent goes silent.",
        "BotSettings",
        "0 stopped cleanly (SIGTERM/SIGINT), 2 invalid settings or the database cannot be used",
    ),
    "up": (
        "Runs the agent and the bot together on this machine with no setup: alerts go to Slack\n"
        "when SLACK_BOT_TOKEN is set, else they are printed here as they happen.",
        "UpSettings",
        "0 stopped cleanly, 1 a port or the log source cannot be used, 2 invalid settings",
    ),
    "doctor": (
        "Checks what the agent and the bot need on this host (kernel log access, journal, /proc,\n"
        "the memory cgroup controller, pod log directories, SYN cookies, the bot's reachability\n"
        "and clock) and says how to fix each gap.",
        None,
        "0 all ok, 1 a warning, 2 a failure (the worst finding decides)",
    ),
}


def _settings_help(class_name: str) -> str:
    """`NAME (default)` for every setting of a kernbot.settings class; secrets never shown."""
    from pydantic import AliasChoices
    from pydantic_core import PydanticUndefined

    from kernbot import settings

    model = getattr(settings, class_name)
    prefix = model.model_config.get("env_prefix", "")
    rows = []
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        env = str(alias.choices[0]) if isinstance(alias, AliasChoices) else f"{prefix}{name}"
        if field.default is not PydanticUndefined and field.default not in (None, [], {}):
            default = f" (default {field.default})"
        elif field.default_factory is not None and field.default_factory not in (list, dict):
            default = " (default: computed on this host)"
        else:
            default = ""
        rows.append(f"  {env.upper()}{default}")
    return "settings (environment, or the YAML file given with --config):\n" + "\n".join(rows)


def _epilog(name: str) -> str:
    _, settings_class, exits = DETAILS[name]
    parts = [_settings_help(settings_class)] if settings_class else []
    parts.append("exit codes: " + exits)
    return "\n\n".join(parts)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported (to add its options and its help)."""
    parser = argparse.ArgumentParser(prog="kernbot", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kernbot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        chosen = name == command
        p = sub.add_parser(
            name,
            help=help_text,
            description=f"{help_text}.\n\n{DETAILS[name][0]}" if chosen else help_text,
            epilog=_epilog(name) if chosen else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if chosen:
            importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(args_list)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    mod = importlib.import_module(args._module)
    try:
        return int(mod.run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `kernbot scan --json | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
