"""State on disk is private: directories 0700, databases, outboxes, WAL and position files 0600.

The agent's history and outbox hold whole OOM reports (process names, command lines of the task
table, cgroup paths): on a host with `kernel.dmesg_restrict=1` an unprivileged user must not be
able to read them here either. Modes are set explicitly (mkdir's mode and open's are filtered by
the umask, and an existing directory keeps whatever mode it had), so the result is the same
whatever the umask. SQLite creates its `-wal`, `-shm` and `-journal` files with the mode of the
database file, so creating that file 0600 first covers them; existing ones are fixed too.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) and make `path` itself 0700 — unless it is a shared
    directory (sticky bit, like /tmp) or someone else's, which is never ours to close."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    st = path.stat()
    if not st.st_mode & stat.S_ISVTX and st.st_uid == os.geteuid():
        os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path, *, private_parent: bool = True) -> Path:
    """Create `path` if missing and make it (and the SQLite files beside it) 0600; its directory
    0700 too when `private_parent` (a state dir, not a directory the user named)."""
    if private_parent:
        private_dir(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    for suffix in SQLITE_SIDE_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", FILE_MODE)
    return path
