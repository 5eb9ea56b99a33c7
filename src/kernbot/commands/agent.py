"""`kernbot agent`: follow this host's kernel log, ship events to the bot, answer its queries.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 1 when the log source cannot be read (the
message names the fix), 2 for invalid settings.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML settings file (else KERNBOT_CONFIG)")


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
        await agent.run_forever()
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
    configure_logging(settings.log_level)
    if settings.token is None:
        logging.getLogger("kernbot.agent").warning(
            "KERNBOT_TOKEN is not set: the agent API answers 401 to everyone and the bot will "
            "refuse its events"
        )
    return asyncio.run(_serve(settings))
