"""The `kernbot` command: one subcommand per part, each implemented in its own module.

Each command module exposes `add_arguments(parser)` and `run(args) -> int`; only the chosen one is
imported, so `kernbot scan` never pays for Slack or SQLAlchemy imports.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from kernbot import __version__
from kernbot.errors import KernbotError

_C = "kernbot.commands."
COMMANDS: dict[str, tuple[str, str]] = {  # name -> (module under kernbot.commands, help)
    "scan": (_C + "scan", "explain every OOM kill and SYN flood in kernel logs"),
    "agent": (_C + "agent", "follow this host's kernel log and ship events to the bot"),
    "bot": (_C + "bot", "the Slack bot: ingest events, post alerts, answer slash commands"),
    "up": (_C + "up", "agent and bot in one process on this machine"),
    "doctor": (_C + "doctor", "check what kernbot needs on this host and how to fix gaps"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported (to add its options)."""
    parser = argparse.ArgumentParser(prog="kernbot", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kernbot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
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
    except KernbotError as exc:  # the last edge: explained, never a traceback
        print(f"kernbot {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `kernbot scan --json | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
