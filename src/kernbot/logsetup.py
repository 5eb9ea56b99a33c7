"""Logging for the long-running commands (agent, bot, up): one format, quiet libraries."""

from __future__ import annotations

import logging
import sys

from kernbot.logsafe import logsafe

QUIET = ("apscheduler", "alembic")
"""Libraries whose INFO lines (every job run, every migration step) would drown ours."""


MESSAGE_LIMIT = 4000


class OneLineFormatter(logging.Formatter):
    """Every message is one bounded line: text from hosts (names, kernel lines, URLs, Slack
    errors) cannot inject a newline or a terminal escape into the log (kernbot.logsafe); a
    traceback, ours, still follows on its own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = logsafe(record.message, MESSAGE_LIMIT)
        return super().formatMessage(record)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
