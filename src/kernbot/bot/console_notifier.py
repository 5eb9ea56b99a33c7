"""A Notifier that prints alerts in the terminal: `kernbot up` without Slack settings.

It reads the same Block Kit messages Slack would get, so a terminal user sees the same facts.
Slack escaping is undone for readability, our own mrkdwn markers are dropped, and every line is
then passed through `render_text.escape_terminal`, so a process named with an escape sequence
shows as `\\x1b[...` instead of repainting the screen.
"""

from __future__ import annotations

import itertools
import re
import sys
from typing import Any, TextIO

from kernbot.bot.escape import unescape
from kernbot.bot.ports import Message, PostedRef
from kernbot.render_text import escape_terminal

_FENCE = "```"


def _mrkdwn_to_text(text: str) -> str:
    """Our markup out, code blocks indented. Kernel text's own `*` and backticks are look-alikes
    outside code blocks (see `escape.mrkdwn`), so any raw `*` or backtick there is ours."""
    parts = text.split(_FENCE)
    out: list[str] = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append("\n".join("    " + line for line in unescape(part).split("\n")))
        else:
            out.append(unescape(re.sub(r"[*`]", "", part)).strip("\n"))
    return "\n".join(p for p in out if p)


def _block_lines(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        title = unescape(block["text"]["text"])
        return ["", f"== {title} =="]
    if kind == "section":
        lines = []
        if "text" in block:
            lines.append(_mrkdwn_to_text(block["text"]["text"]))
        for f in block.get("fields", []):
            label, _, value = _mrkdwn_to_text(f["text"]).partition("\n")
            lines.append(f"  {label}: {value.replace(chr(10), '; ')}")
        return lines
    if kind == "context":
        return ["  " + " · ".join(_mrkdwn_to_text(e.get("text", "")) for e in block["elements"])]
    if kind == "actions":
        buttons = (unescape(e["text"]["text"]) for e in block["elements"] if "text" in e)
        return ["  " + " ".join(f"[{b}]" for b in buttons)]
    if kind == "divider":
        return ["  ---"]
    return []


def to_text(message: Message) -> str:
    """A Message as terminal text (every line escaped for the terminal)."""
    if not message.blocks:
        lines = [_mrkdwn_to_text(message.text)]
    else:
        lines = [line for block in message.blocks for line in _block_lines(block)]
    text = "\n".join(lines)
    return "\n".join(escape_terminal(line) for line in text.split("\n"))


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
        self._write(f"(update of alert {escape_terminal(ref.ts)})\n{to_text(message)}")
