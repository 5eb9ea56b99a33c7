"""Where the agent stopped reading, kept on disk so a restart (even `kill -9`) resumes after it.

The position is small JSON (boot_id + kmsg seq, a journald cursor, or a file's inode + offset)
plus the /proc/vmstat `oom_kill` count already accounted for. It is replaced atomically
(write a temp file, fsync, rename, fsync the directory) so a crash leaves the old or the new
file, never half of one.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kernbot.state_files import private_dir

log = logging.getLogger(__name__)


@dataclass
class Position:
    source: str
    boot_id: str | None = None
    seq: int | None = None
    cursor: str | None = None
    inode: int | None = None
    offset: int | None = None
    oom_kills_accounted: int | None = None
    """vmstat oom_kill value already matched with log events (for `boot_id`)."""
    extra: dict[str, Any] = field(default_factory=dict)


class PositionStore:
    """Loads and atomically saves one `Position` under the state directory."""

    def __init__(self, state_dir: Path, name: str = "position.json") -> None:
        self.path = state_dir / name
        self._tmp = self.path.with_suffix(".tmp")
        self._dir_made = False
        """The directory was made private once; a save (several a second while the log is
        busy) does not do it again (issue 11) unless the directory is gone."""

    def load(self) -> Position | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable position file %s: %s", self.path, exc)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("source"), str):
            log.warning("ignoring malformed position file %s", self.path)
            return None
        known = set(Position.__dataclass_fields__)
        return Position(**{k: v for k, v in data.items() if k in known})

    def save(self, pos: Position) -> None:
        body = json.dumps(asdict(pos), sort_keys=True).encode()
        if not self._dir_made:
            private_dir(self.path.parent)
            self._dir_made = True
        try:
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except FileNotFoundError:  # the state directory was removed meanwhile: make it again
            private_dir(self.path.parent)
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self._tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


class PositionSaver:
    """Saves the pipeline's safe position when it changed, at most every `every_s` seconds
    (unless forced: end of source, shutdown). A failed save is logged and retried next time."""

    def __init__(
        self,
        store: PositionStore,
        current: Callable[[], Position | None],
        mono: Callable[[], float],
        *,
        saved: Position | None = None,
        every_s: float = 0.25,
    ) -> None:
        self.store = store
        self.current = current
        self.mono = mono
        self.every_s = every_s
        self.saved = saved
        self._last_save: float | None = None

    def save(self, force: bool = False) -> None:
        pos = self.current()
        if pos is None or pos == self.saved:
            return
        now = self.mono()
        if not force and self._last_save is not None and now - self._last_save < self.every_s:
            return
        try:
            self.store.save(pos)
        except OSError as exc:
            log.error("cannot save position to %s: %s", self.store.path, exc)
            return
        self.saved = replace(pos)  # a copy: the pipeline updates `pos` in place
        self._last_save = now
