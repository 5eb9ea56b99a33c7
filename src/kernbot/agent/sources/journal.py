"""journald: `journalctl -k -o json`, resumed from the last handled entry's cursor.

Used where /dev/kmsg is not readable (an unprivileged pod with the host journal mounted). On first
start the existing kernel entries are read once without following (that is the backlog), then
`journalctl -f --after-cursor` follows; if journalctl exits, it is restarted with backoff from the
last cursor, so nothing is read twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable
from typing import Any

from kernbot.agent.position import Position
from kernbot.agent.sources import Batch, Item, SourceUnavailable
from kernbot.agent.sources.facility import KERN, NotKernelLog, journal_facility
from kernbot.core.record import Record

log = logging.getLogger(__name__)

LINE_LIMIT = 4 * 1024 * 1024


class JournalSource:
    name = "journal"

    def __init__(
        self,
        resume: Position | None,
        journalctl: str = "journalctl",
        directory: str | None = None,
    ) -> None:
        self.journalctl = journalctl
        self.directory = directory
        """Read this journal directory (`journalctl -D`) instead of the local system journal."""
        self.healthy = False
        self.error: str | None = None
        self.cursor: str | None = resume.cursor if resume is not None else None
        self._first_start = resume is None
        self._proc: asyncio.subprocess.Process | None = None
        self._not_kernel = NotKernelLog("journal")

    async def open(self) -> None:
        if shutil.which(self.journalctl) is None:
            self.error = (
                f"cannot run {self.journalctl!r}: not found. Install systemd's journalctl "
                "or use KERNBOT_SOURCE=kmsg / file:/var/log/kern.log"
            )
            raise SourceUnavailable(self.error)
        if self.directory and not await asyncio.to_thread(os.path.isdir, self.directory):
            self.error = (
                f"journal directory {self.directory} does not exist: mount the host's "
                "/var/log/journal (persistent journald storage) or use KERNBOT_SOURCE=kmsg"
            )
            raise SourceUnavailable(self.error)
        self.healthy = True

    def _argv(self, follow: bool) -> list[str]:
        argv = [self.journalctl, "-k", "-o", "json", "--no-pager", "-n", "all"]
        if self.directory:
            argv.append(f"--directory={self.directory}")
        if follow:
            argv.append("-f")
        if self.cursor:
            argv.append(f"--after-cursor={self.cursor}")
        return argv

    async def _run(self, follow: bool, backlog: bool) -> AsyncIterator[Batch]:
        from kernbot.core.formats.reader import parse_journal_entry

        proc = await asyncio.create_subprocess_exec(
            *self._argv(follow),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._proc = proc
        assert proc.stdout is not None
        pending = b""
        try:
            while True:
                chunk = await proc.stdout.read(65536)
                if not chunk:
                    break
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                if len(pending) > LINE_LIMIT:
                    pending = b""
                batch = Batch(backlog=backlog)
                for line in lines:
                    if line.strip():
                        self._parse(line, batch, parse_journal_entry)
                yield batch
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            err = b""
            if proc.stderr is not None:
                with contextlib.suppress(Exception):
                    err = await proc.stderr.read()
            await proc.wait()
            if proc.returncode not in (0, -9) and err:
                self.error = err.decode(errors="replace").strip()[:500]
            self._proc = None

    def _parse(
        self, line: bytes, batch: Batch, parse: Callable[[dict[str, Any]], list[Record]]
    ) -> None:
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not an object")
            facility = journal_facility(obj)
            if facility is not None and facility != KERN:
                self._count_not_kernel(obj, facility, batch)
                return
            records = parse(obj)
        except ValueError:
            batch.garbled += 1
            return
        cursor = obj.get("__CURSOR")
        if isinstance(cursor, str):
            self.cursor = cursor
        if not records:
            batch.garbled += 1
        batch.items.append(
            Item(records=list(records), position=Position("journal", cursor=self.cursor))
        )

    def _count_not_kernel(self, obj: dict[str, Any], facility: int, batch: Batch) -> None:
        cursor = obj.get("__CURSOR")
        if isinstance(cursor, str):
            self.cursor = cursor
        batch.not_kernel += 1
        self._not_kernel.seen(facility, str(obj.get("MESSAGE", "")))
        batch.items.append(Item(records=[], position=Position("journal", cursor=self.cursor)))

    async def batches(self) -> AsyncIterator[Batch]:
        if self._first_start:
            async for batch in self._run(follow=False, backlog=True):
                yield batch
            yield Batch(backlog=True)
        delay = 0.5
        while True:
            self.healthy = True
            async for batch in self._run(follow=True, backlog=False):
                delay = 0.5
                yield batch
            self.healthy = False
            log.warning("journalctl exited (%s); restarting in %.1fs", self.error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def close(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        self.healthy = False
