"""The agent's one clock: wall time, monotonic time and sleeping, injected so tests run the
agent's loops (restart backoff, flush timeouts, position saving) without waiting."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def wall(self) -> float:
        """Unix seconds (time.time)."""

    def mono(self) -> float:
        """CLOCK_MONOTONIC seconds, the clock of kmsg timestamps (time.monotonic)."""

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def wall(self) -> float:
        return time.time()

    def mono(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()
