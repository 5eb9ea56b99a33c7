"""Periodic jobs (heartbeat, SYN counter sampling, vmstat reconciliation) on APScheduler 3.x.

AsyncIOScheduler runs coroutine jobs on the agent's own event loop (plain functions would go to a
thread pool, where the agent's SQLite handles must not be used), so only coroutines are accepted.
A slow job never piles up: one instance at a time, missed runs coalesced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class Scheduler:
    def __init__(self) -> None:
        self._sched = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        self._jobs: list[tuple[str, float, Job]] = []

    def every(self, seconds: float, name: str, job: Job) -> None:
        async def guarded() -> None:
            try:
                await job()
            except Exception:
                log.exception("periodic job %s failed", name)

        self._sched.add_job(
            guarded,
            "interval",
            seconds=seconds,
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(seconds)),
        )

    def start(self) -> None:
        self._sched.start()

    def shutdown(self) -> None:
        if self._sched.running:
            self._sched.shutdown(wait=False)
