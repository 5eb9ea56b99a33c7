"""The `kernbot` command: one subcommand per part, each implemented in its own module.

Each command module exposes `add_arguments(parser)` and `run(args) -> int`; they are imported
lazily so `kernbot scan` never pays for Slack or SQLAlchemy imports.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from kernbot import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("kernbot.scan", "explain every OOM kill and SYN flood in kernel logs"),
    "agent": ("kernbot.agent.main", "follow this host's kernel log and ship events to the bot"),
    "bot": ("kernbot.bot.main", "the Slack bot: ingest events, post alerts, answer slash commands"),
    "up": ("kernbot.up", "agent and bot in one process on this machine"),
    "doctor": ("kernbot.doctor", "check what kernbot needs on this host and how to fix gaps"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kernbot", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kernbot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)
        mod.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    mod = importlib.import_module(args._module)
    try:
        return int(mod.run(args))
    except KeyboardInterrupt:
        return 130
