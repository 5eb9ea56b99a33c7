"""Following the kernel log: open the source (or the fallback), feed its batches to the pipeline,
save the position, and come back from a failing source (ARCHITECTURE.md).

A source that fails while reading is closed and reopened at the pipeline's safe position, with
exponential backoff. A reopen that fails is logged, counted (`kernbot_agent_source_reopen_failures`)
and retried with the same backoff, and the source stays marked unhealthy (heartbeat, /v1/status,
metrics) until a reopen succeeds: the loop never goes on reading a closed source. A source that
cannot be opened at all at start (`SourceUnavailable`) is fatal unless a fallback is configured.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kernbot.agent.clock import SYSTEM_CLOCK, Clock
from kernbot.agent.metrics import AgentMetrics
from kernbot.agent.pipeline import Pipeline
from kernbot.agent.position import Position, PositionSaver
from kernbot.agent.sources import (
    Source,
    SourceConfig,
    SourceUnavailable,
    make_source,
)

log = logging.getLogger(__name__)

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0

SourceMaker = Callable[[str, SourceConfig], Source]
"""Builds a source from a `KERNBOT_SOURCE` spec (`make_source`); tests inject fakes here."""


class SourceFollower:
    def __init__(
        self,
        spec: str,
        pipeline: Pipeline,
        saver: PositionSaver,
        metrics: AgentMetrics,
        *,
        config: SourceConfig,
        fallback: str | None = None,
        factory: SourceMaker = make_source,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.spec = spec
        """The source in use (the fallback's spec once it took over)."""
        self.pipeline = pipeline
        self.saver = saver
        self.metrics = metrics
        self.config = config
        self.fallback = fallback
        self.factory = factory
        self.clock = clock
        self.source: Source | None = None
        self.fatal: SourceUnavailable | None = None
        self.reopen_failures = 0

    @property
    def healthy(self) -> bool:
        return self.source is not None and self.source.healthy

    @property
    def error(self) -> str | None:
        return self.source.error if self.source is not None else "not started"

    def _make(self, spec: str, resume: Position | None) -> Source:
        cfg = SourceConfig(
            arg=None, resume=resume, boot_id=self.config.boot_id, proc_root=self.config.proc_root
        )
        return self.factory(spec, cfg)

    async def open(self, resume: Position | None = None) -> Source:
        """Open the configured source, else the fallback; `SourceUnavailable` when neither."""
        resume = resume if resume is not None else self.config.resume
        try:
            source = self._make(self.spec, resume)
            await source.open()
        except SourceUnavailable as exc:
            if not self.fallback or self.fallback == self.spec:
                raise
            log.warning("%s; falling back to source %r", exc, self.fallback)
            self.spec = self.fallback
            source = self._make(self.spec, resume)
            await source.open()
        self.source = source
        return source

    async def run(self, stopping: asyncio.Event) -> None:
        """Read until the source ends, `stopping` is set, or the source becomes unavailable
        (then `fatal` is set and `stopping` too)."""
        delay = FIRST_DELAY_S
        while not stopping.is_set():
            source = self.source
            if source is None:
                return
            try:
                async for batch in source.batches():
                    self.pipeline.feed(batch)
                    self.saver.save()
                    delay = FIRST_DELAY_S
                log.info("source %s reached its end", source.name)
                self.pipeline.flush()
                self.saver.save(force=True)
                return
            except asyncio.CancelledError:
                raise
            except SourceUnavailable as exc:
                self.fatal = exc
                stopping.set()
                return
            except Exception as exc:
                source.healthy = False
                source.error = f"{type(exc).__name__}: {exc}"
                self.metrics.source_failures.inc()
                log.exception("source %s failed; restarting in %.1fs", source.name, delay)
                delay = await self._reopen(source, delay, stopping)

    async def _reopen(self, failed: Source, delay: float, stopping: asyncio.Event) -> float:
        """Close the failed source and open a new one, retrying with backoff until it opens or
        the agent stops. Returns the next delay."""
        try:
            await failed.close()
        except Exception as exc:  # closing a broken transport may fail too; the reopen matters
            log.warning(
                "closing the failed source %s: %s: %s", failed.name, type(exc).__name__, exc
            )
        while not stopping.is_set():
            await self.clock.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
            if stopping.is_set():
                break
            try:
                await self.open(self.pipeline.safe_position or self.config.resume)
                return delay
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.reopen_failures += 1
                self.metrics.source_reopen_failures.inc()
                failed.healthy = False
                failed.error = f"reopen failed: {type(exc).__name__}: {exc}"
                log.error(
                    "cannot reopen source %s (%s: %s); retrying in %.1fs",
                    self.spec, type(exc).__name__, exc, delay,
                )  # fmt: skip
        return delay

    async def close(self) -> None:
        if self.source is not None:
            try:
                await asyncio.wait_for(self.source.close(), 1.0)
            except Exception as exc:
                log.warning("closing source %s: %s: %s", self.spec, type(exc).__name__, exc)
