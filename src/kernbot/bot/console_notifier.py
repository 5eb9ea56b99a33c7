"""A Notifier that prints alerts in the terminal: `kernbot up` without Slack settings.

It renders the alert document a message was built from (`Message.document`) with
`render_text.render_document`, the renderer `kernbot scan` uses, so a terminal user sees the same
facts and words as Slack, and never parses Block Kit back. Every string from a host is escaped
for the terminal there, so a process named with an escape sequence shows as `\\x1b[...`.
"""

from __future__ import annotations

import itertools
import sys
from typing import TextIO

from kernbot.bot.escape import unescape
from kernbot.bot.ports import Message, PostedRef
from kernbot.render_text import escape_terminal, render_document


def to_text(message: Message) -> str:
    """A Message as terminal text: its document, else its plain fallback line."""
    if message.document is not None:
        # `== title ==` sets each alert apart from the log lines around it
        first, _, rest = render_document(message.document).partition("\n")
        return f"\n== {first} ==" + (f"\n{rest}" if rest else "")
    return escape_terminal(unescape(message.text))


class ConsoleNotifier:
    """`ports.Notifier` that writes to a stream (stdout by default)."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._ts = itertools.count(1)

    def _write(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    async def post(
        self, channel: str | None, message: Message, thread: PostedRef | None = None
    ) -> PostedRef:
        ref = PostedRef(channel=channel or "console", ts=str(next(self._ts)))
        text = to_text(message)
        if thread is not None:
            text = "\n".join(f"  ↳ {line}" for line in text.strip("\n").split("\n"))
        self._write(text)
        return ref

    async def update(self, ref: PostedRef, message: Message) -> None:
        self._write(f"(update of alert {escape_terminal(ref.ts)}){to_text(message)}")
