"""The live status line of `kernbot up` in a terminal, drawn so that it never garbles an alert.

The line lives on stderr and is redrawn in place (`\\r`, erase to end of line); alerts go to
stdout and log lines to stderr. On one terminal, an alert printed while the status line is shown
would be glued to its text, so everything that prints goes through `clear()` first
(`StatusAwareNotifier` for alerts, `ClearBeforeLogging` for log records) and the next tick
redraws it. Off a terminal there is no redrawing: `every_s` apart, a plain line is printed.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from kernbot.bot.escape import unescape
from kernbot.bot.ports import Message, Notifier, PostedRef
from kernbot.render_text import escape_terminal

_ERASE = "\r\x1b[K"


@dataclass
class Snapshot:
    """What the status line shows; taken from the running agent and notifier."""

    records_read: int = 0
    events: Mapping[str, int] = field(default_factory=dict)
    source: str = ""
    source_healthy: bool = True
    last_alert: str | None = None
    last_alert_at: float | None = None
    """time.time() of the last alert delivered."""
    at_risk: list[str] = field(default_factory=list)
    """Headlines of the open OOM-risk episodes, worst first."""


def _ago(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s ago"
    if s < 3600:
        return f"{s // 60}m ago"
    return f"{s // 3600}h{s % 3600 // 60:02d}m ago"


def format_status(snap: Snapshot, now: float, width: int) -> str:
    """One line, at most `width - 1` characters (a full-width line would wrap and break `\\r`)."""
    events = ", ".join(f"{n} {kind}" for kind, n in sorted(snap.events.items()) if n) or "none"
    source = snap.source if snap.source_healthy else f"{snap.source} (NOT READING)"
    parts = [f"kernbot up · {source}", f"{snap.records_read} records", f"events: {events}"]
    if snap.last_alert is not None and snap.last_alert_at is not None:
        parts.append(f"last alert {_ago(now - snap.last_alert_at)}: {snap.last_alert}")
    else:
        parts.append("no alert yet")
    if snap.at_risk:
        parts.append(f"OOM risk ({len(snap.at_risk)}): {snap.at_risk[0]}")
    line = escape_terminal(" | ".join(parts))
    limit = max(10, width - 1)
    return line if len(line) <= limit else line[: limit - 1] + "…"


class StatusLine:
    """Redraws `snapshot()` on `stream`; `interactive` is False when not on a terminal."""

    def __init__(
        self,
        stream: TextIO,
        snapshot: Callable[[], Snapshot],
        *,
        interactive: bool,
        interval_s: float = 1.0,
        every_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        width: Callable[[], int] | None = None,
    ) -> None:
        """`width`: the terminal's columns (default: asked each time, it may be resized)."""
        self.stream = stream
        self.snapshot = snapshot
        self.interactive = interactive
        self.interval_s = interval_s if interactive else every_s
        self.clock = clock
        self._width = width or (lambda: shutil.get_terminal_size((100, 24)).columns)
        self._shown = False

    def clear(self) -> None:
        """Erase the line (if drawn) so the next write starts at column 0."""
        if self._shown:
            self._shown = False
            self._write(_ERASE)

    def draw(self) -> None:
        text = format_status(self.snapshot(), self.clock(), self._width())
        if self.interactive:
            self._write(_ERASE + text)
            self._shown = True
        else:
            self._write(text + "\n")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # closed terminal: the status line is not worth a crash
            self._shown = False

    async def run(self) -> None:
        """Draw every `interval_s` until cancelled; the line is erased on the way out."""
        try:
            if not self.interactive:
                await asyncio.sleep(self.interval_s)
            while True:
                self.draw()
                await asyncio.sleep(self.interval_s)
        finally:
            self.clear()


class ClearBeforeLogging(logging.Filter):
    """A handler filter: erase the status line before the handler writes a record."""

    def __init__(self, status: StatusLine) -> None:
        super().__init__()
        self.status = status

    def filter(self, record: logging.LogRecord) -> bool:
        self.status.clear()
        return True


class StatusAwareNotifier:
    """Wraps the real notifier: remembers the last alert for the status line and erases the
    line before the inner notifier (the console one) prints."""

    def __init__(
        self, inner: Notifier, status: StatusLine | None, clock: Callable[[], float] = time.time
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.status = status
        self.clock = clock
        self.last_alert: str | None = None
        self.last_alert_at: float | None = None

    def _remember(self, message: Message) -> None:
        first = unescape(message.text).split("\n", 1)[0]
        self.last_alert = first[:200]
        self.last_alert_at = self.clock()

    async def post(
        self, channel: str | None, message: Message, thread: PostedRef | None = None
    ) -> PostedRef:
        if self.status is not None:
            self.status.clear()
        ref = await self.inner.post(channel, message, thread)
        self._remember(message)
        return ref

    async def update(self, ref: PostedRef, message: Message) -> None:
        if self.status is not None:
            self.status.clear()
        await self.inner.update(ref, message)
        self._remember(message)

    async def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            await close()
