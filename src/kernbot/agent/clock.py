"""The agent's one clock: wall time, monotonic time and sleeping, injected so tests run the
agent's loops (restart backoff, flush timeouts, position saving) without waiting."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Clock:
    """The real clock. `mono()` is CLOCK_MONOTONIC, the clock of kmsg timestamps."""

    def wall(self) -> float:
        return time.time()

    def mono(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = Clock()
