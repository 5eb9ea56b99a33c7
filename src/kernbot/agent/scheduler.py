"""Periodic jobs (heartbeat, SYN counter sampling, vmstat reconciliation) as asyncio tasks.

One task per job on the agent's own event loop, so jobs may use the agent's SQLite handles. A slow
job never piles up: the next run is due one interval after the previous one was due, and runs
missed while a job was still busy are skipped (coalesced), not run back to back. The agent used
APScheduler 3.x for this; three fixed intervals do not need its ~1 MiB of modules (tzlocal,
triggers, executors) nor its extra wake-ups.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class Scheduler:
    def __init__(self) -> None:
        self._jobs: list[tuple[str, float, Job]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def every(self, seconds: float, name: str, job: Job) -> None:
        """Run `job` every `seconds`, first one interval after `start()`."""
        if seconds <= 0:
            raise ValueError(f"job {name}: interval must be positive, not {seconds}")
        self._jobs.append((name, seconds, job))

    def start(self) -> None:
        for name, seconds, job in self._jobs:
            self._tasks.append(
                asyncio.create_task(self._run(name, seconds, job), name=f"kernbot-job-{name}")
            )

    @staticmethod
    async def _run(name: str, seconds: float, job: Job) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + seconds
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                await job()
            except Exception:
                log.exception("periodic job %s failed", name)
            now = loop.time()
            due += seconds
            if due <= now:  # the job overran: skip the missed runs
                due = now + seconds - (now - due) % seconds

    def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []
