"""The agent tests' harness: the whole agent in-process, with the parts a test must control
injected through `build_agent` — a fake source you push kernel lines (or failures) into, a
recording outbox (a real SQLite outbox that also keeps every `put`), a fake clock and the
captured /proc snapshot. Imported by name (`from agent_harness import ...`).

No private state is poked: a test feeds lines, moves the clock and reads what was stored.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernbot.agent.app import Agent, build_agent
from kernbot.agent.outbox import Outbox
from kernbot.agent.pods import KubernetesApi
from kernbot.agent.position import Position
from kernbot.agent.proc import ProcReader
from kernbot.agent.sources import Batch, Item, Source, SourceConfig, SourceUnavailable
from kernbot.agent.stored import Stored
from kernbot.core.formats.reader import read_lines
from kernbot.settings import AgentSettings

SNAPSHOT = Path(__file__).resolve().parents[1] / "fixtures" / "proc" / "snapshot"
SNAPSHOT_BOOT_ID = "c4b61f54-759b-4ece-8029-6d58ecdd0590"
T0 = 1_750_000_000.0


class FakeClock:
    """Wall and monotonic time that move only when told to (or when the agent sleeps). The
    monotonic clock starts at 10 000 s of uptime, after the corpus captures' timestamps."""

    def __init__(self, wall: float = T0, mono: float = 10_000.0) -> None:
        self.now = wall
        self.mono_now = mono
        self.slept: list[tuple[str, float]] = []
        """(name of the task that slept, seconds): the reader's backoff is `kernbot-read`."""

    def wall(self) -> float:
        return self.now

    def mono(self) -> float:
        return self.mono_now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono_now += seconds

    async def sleep(self, seconds: float) -> None:
        """Time passes at once; the event loop still gets a (real, tiny) turn."""
        task = asyncio.current_task()
        self.slept.append((task.get_name() if task else "?", seconds))
        self.advance(seconds)
        await asyncio.sleep(0.001)


class FakeSource:
    """A source whose batches are whatever the test pushes: lines, a failure, or the end."""

    name = "fake"

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self.healthy = False
        self.error: str | None = None
        self.closed = False
        self._queue: asyncio.Queue[Batch | BaseException | None] = asyncio.Queue()

    async def open(self) -> None:
        self.healthy = True

    def push(self, lines: list[str], *, first_offset: int = 0, backlog: bool = False) -> None:
        """Kernel log lines as one batch; line i resumes at offset `first_offset + i + 1`."""
        items = [
            Item(records=[rec], position=Position("fake", offset=first_offset + i + 1))
            for i, rec in enumerate(read_lines(lines))
        ]
        self._queue.put_nowait(Batch(items=items, backlog=backlog))

    def fail(self, exc: BaseException) -> None:
        self._queue.put_nowait(exc)

    def end(self) -> None:
        self._queue.put_nowait(None)

    async def batches(self) -> AsyncIterator[Batch]:
        while True:
            got = await self._queue.get()
            if got is None:
                return
            if isinstance(got, BaseException):
                raise got
            yield got

    async def close(self) -> None:
        self.closed = True
        self.healthy = False


@dataclass
class FakeSources:
    """The injected source maker: records every source it made and can refuse to open."""

    made: list[FakeSource] = field(default_factory=list)
    specs: list[str] = field(default_factory=list)
    refuse: int = 0
    """The next this many opens raise (a reopen that fails)."""
    unavailable: set[str] = field(default_factory=set)
    """Specs that raise SourceUnavailable (a /dev/kmsg the agent may not read)."""

    def __call__(self, spec: str, config: SourceConfig) -> Source:
        self.specs.append(spec)
        if spec in self.unavailable:
            raise SourceUnavailable(f"{spec} is not readable here")
        if self.refuse:
            self.refuse -= 1
            raise OSError("reopen refused by the test")
        src = FakeSource(config)
        self.made.append(src)
        return src

    @property
    def current(self) -> FakeSource:
        return self.made[-1]


class RecordingOutbox(Outbox):
    """The real outbox (SQLite), which also keeps every accepted put in order."""

    def __init__(self, path: Path, history: Path | None = None) -> None:
        super().__init__(path, history=history)
        self.puts: list[dict[str, Any]] = []

    def put_many(self, rows: Sequence[Stored]) -> list[Stored]:
        accepted = super().put_many(rows)
        self.puts.extend(json.loads(r.body) for r in accepted)
        return accepted


@dataclass
class AgentHarness:
    agent: Agent
    sources: FakeSources
    outbox: RecordingOutbox
    clock: FakeClock

    def kinds(self) -> list[str]:
        return [b["kind"] for b in self.outbox.puts]


def make_agent(
    state_dir: Path,
    *,
    sources: FakeSources | None = None,
    kubernetes_api: KubernetesApi | None = None,
    **settings: Any,
) -> AgentHarness:
    """An agent over fakes; `settings` override AgentSettings fields (source defaults to `fake`,
    which only the injected maker knows)."""
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "source": "fake",
        "hostname": "node-1",
        "listen": "127.0.0.1:0",
        "pod_log_dir": state_dir / "no-pods",
        "proc_root": SNAPSHOT,
        "cgroup_root": state_dir / "no-cgroups",  # never this host's cgroups
    }
    values.update(settings)
    sources = sources or FakeSources()
    clock = FakeClock()
    outbox = RecordingOutbox(state_dir / "outbox.db", history=state_dir / "history.db")
    agent = build_agent(
        AgentSettings(**values),
        proc=ProcReader(SNAPSHOT),
        source_maker=sources,
        outbox=outbox,
        clock=clock,
        kubernetes_api=kubernetes_api,
    )
    return AgentHarness(agent, sources, outbox, clock)
