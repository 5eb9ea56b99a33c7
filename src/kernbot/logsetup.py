"""Logging for the long-running commands (agent, bot, up): one format, quiet libraries."""

from __future__ import annotations

import logging
import sys

QUIET = ("apscheduler", "alembic")
"""Libraries whose INFO lines (every job run, every migration step) would drown ours."""


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
