"""Kernel log sources: each turns one transport into `Item`s (records + the position after them),
or, a log file, into whole lines as bytes that the pipeline reads (`Batch.data`).

A source only reads and converts; detection, enrichment and shipping happen downstream, so every
source is a small plugin behind the `Source` protocol, registered by name in `SOURCES`
(`KERNBOT_SOURCE` = `kmsg`, `journal`, `journal:DIR` (a journal directory such as the host's
/var/log/journal mounted into a pod), `file:PATH` or `stdin`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from kernbot.agent.position import Position
from kernbot.core.record import Record
from kernbot.errors import KernbotError

if TYPE_CHECKING:
    from kernbot.core.formats.reader import LineReader


class SourceUnavailable(KernbotError):
    """The source cannot be opened; the message names the fix."""


@dataclass(slots=True)
class Item:
    """What one raw unit (a kmsg record, a journal entry, a line of stdin or of a file that
    `\\r` ends lines of) became."""

    records: list[Record]
    position: Position | None
    """Where to resume after this item; None when the transport cannot resume (stdin), or when
    the batch makes it from `end` (`Batch.resume_at`)."""
    end: int | None = None
    """A file's byte offset after this line: its position is made by `Batch.place` only when
    the pipeline keeps it (issue 11: a `Position` per line of a busy log, made and freed 10,000
    times a second, for the one or two a batch ends up keeping)."""


@dataclass(slots=True)
class Batch:
    items: list[Item] = field(default_factory=list)
    data: bytes = b""
    """Whole lines as a file holds them, for the pipeline to read with `reader` (a log file's
    batch: `items` is then empty). Issue 11: the pipeline reads them the way `kernbot scan`
    does, a run of an OOM report's plain lines in one step (`kernbot.core.blocks`), instead of
    a record, an `Item` and two detector calls per line."""
    start: int = 0
    """The byte offset of `data` in its file: a line ending at `data[i]` is resumed after at
    `place(start + i + 1)`."""
    reader: LineReader | None = None
    """The source's reader of `data` (its state runs on from one batch to the next)."""
    lost: int = 0
    """Records the transport says were lost (kmsg EPIPE / sequence gaps)."""
    garbled: int = 0
    """Raw units that could not be parsed and were skipped."""
    not_kernel: int = 0
    """Records user space wrote into the kernel log (syslog facility other than `kern`):
    skipped, never events (see `kernbot.agent.sources.facility`)."""
    backlog: bool = False
    """True while reading what was already in the log when the source opened."""
    place: Callable[[int], Position] | None = None
    """Makes the position of an item that has only its `end`."""

    def resume_at(self, item: Item) -> Position | None:
        """Where to resume after `item`: its position, else the one its `end` names."""
        if item.position is not None or item.end is None or self.place is None:
            return item.position
        return self.place(item.end)


class Source(Protocol):
    name: str
    healthy: bool
    error: str | None

    async def open(self) -> None:
        """Acquire the transport; raise `SourceUnavailable` with a fix in the message."""

    def batches(self) -> AsyncIterator[Batch]:
        """Yield batches until closed; a batch may be empty (a keep-alive)."""

    async def close(self) -> None: ...


@dataclass(slots=True, frozen=True)
class SourceConfig:
    arg: str | None
    """What follows `name:` in the spec (a path for `file:`)."""
    resume: Position | None
    boot_id: str | None
    proc_root: Path = Path("/proc")


SourceFactory = Callable[[SourceConfig], Source]


def _kmsg(cfg: SourceConfig) -> Source:
    from kernbot.agent.sources.kmsg import KmsgSource

    return KmsgSource(Path(cfg.arg or "/dev/kmsg"), cfg.boot_id, cfg.resume, cfg.proc_root)


def _journal(cfg: SourceConfig) -> Source:
    from kernbot.agent.sources.journal import JournalSource

    return JournalSource(cfg.resume, directory=cfg.arg)


def _file(cfg: SourceConfig) -> Source:
    from kernbot.agent.sources.logfile import LogFileSource

    if not cfg.arg:
        raise SourceUnavailable(
            "source `file:` needs a path, e.g. KERNBOT_SOURCE=file:/var/log/kern.log"
        )
    return LogFileSource(Path(cfg.arg), cfg.resume)


def _stdin(cfg: SourceConfig) -> Source:
    from kernbot.agent.sources.stdin import StdinSource

    return StdinSource()


SOURCES: dict[str, SourceFactory] = {
    "kmsg": _kmsg,
    "journal": _journal,
    "file": _file,
    "stdin": _stdin,
}


def source_name(spec: str) -> str:
    return spec.partition(":")[0].strip().lower()


def make_source(spec: str, cfg: SourceConfig) -> Source:
    """Build the source named by a `KERNBOT_SOURCE` spec such as `file:/var/log/kern.log`."""
    name, _, arg = spec.partition(":")
    factory = SOURCES.get(name.strip().lower())
    if factory is None:
        known = ", ".join(sorted(SOURCES))
        raise SourceUnavailable(f"unknown source {spec!r}; choose one of {known} (file:PATH)")
    return factory(
        SourceConfig(
            arg=arg or None, resume=cfg.resume, boot_id=cfg.boot_id, proc_root=cfg.proc_root
        )
    )
