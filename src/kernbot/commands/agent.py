"""`kernbot agent`: follow this host's kernel log, ship events to the bot, answer its queries.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 1 when the log source cannot be read (the
message names the fix), 2 for invalid settings.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML settings file (else KERNBOT_CONFIG)")


GC_THRESHOLDS = (10_000, 10, 10)
"""Young collections after 10,000 net allocations instead of 700: a batch of the log's lines
(hundreds of records, their items and positions) is freed by reference counting before the
collector walks it, instead of being walked and promoted two or three times."""


def _tune_gc() -> None:
    """Once the agent runs: everything made while starting (the imported modules, settings, the
    stores: most of the agent's objects, kept for its lifetime) is moved out of the cyclic
    collector's reach, and young collections are rarer (`GC_THRESHOLDS`). Issue 11: in an OOM
    loop (10,000 log lines a second) the collector took ~12 % of the agent's CPU, most of it full
    collections walking the startup objects every few seconds; now ~3 %."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _serve(settings: object) -> int:
    from kernbot.agent.app import build_agent
    from kernbot.errors import KernbotError
    from kernbot.settings import AgentSettings

    assert isinstance(settings, AgentSettings)
    agent = build_agent(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.request_stop)
    try:
        await agent.run_forever(started=_tune_gc)
    except (KernbotError, OSError) as exc:  # e.g. /dev/kmsg denied, the port is taken
        print(f"kernbot agent: {exc}", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    from kernbot.logsetup import configure_logging
    from kernbot.settings import AgentSettings, SettingsError, load_settings

    try:
        settings = load_settings(AgentSettings, args.config)
    except SettingsError as exc:
        print(f"kernbot agent: {exc}", file=sys.stderr)
        return 2
    if settings.token is None or not settings.token.get_secret_value():
        from kernbot.bearer import MISSING_TOKEN_HELP

        print(f"kernbot agent: {MISSING_TOKEN_HELP}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return asyncio.run(_serve(settings))
