"""Standard input: kernel log lines piped in (`dmesg -w | kernbot agent`, replays, benchmarks).

A daemon thread does the blocking reads, because stdin may be a pipe, a tty or a regular file and
only pipes can be polled; lines reach the event loop through a queue. No resume position.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import AsyncIterator
from typing import BinaryIO

from kernbot.agent.sources import Batch, Item

MAX_BATCH = 1024


class StdinSource:
    name = "stdin"

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdin.buffer
        self.healthy = False
        self.error: str | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8192)

    async def open(self) -> None:
        self.healthy = True

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        def put(item: bytes | None) -> None:
            asyncio.run_coroutine_threadsafe(self._queue.put(item), loop).result()

        try:
            for line in self.stream:
                put(line)
        except (OSError, RuntimeError, ValueError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):
                put(None)

    async def batches(self) -> AsyncIterator[Batch]:
        from kernbot.core.formats.reader import LineReader

        reader = LineReader()
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._pump, args=(loop,), name="stdin", daemon=True).start()
        while True:
            line = await self._queue.get()
            lines = [line]
            while len(lines) < MAX_BATCH and not self._queue.empty():
                lines.append(self._queue.get_nowait())
            batch = Batch()
            done = False
            for raw in lines:
                if raw is None:
                    done = True
                    break
                try:
                    records = reader.feed(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
                except ValueError:
                    batch.garbled += 1
                    continue
                batch.items.append(Item(records=list(records), position=None))
            yield batch
            if done:
                self.healthy = False
                self.error = "end of input"
                return

    async def close(self) -> None:
        self.healthy = False
