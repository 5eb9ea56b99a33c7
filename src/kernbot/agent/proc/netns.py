"""Run a function inside another network namespace without moving the agent.

Some network facts are only visible from inside a namespace: /proc/sys/net and sock_diag netlink
answer for the namespace of the calling thread. setns(2) on a brand-new thread changes only that
thread, which then exits, so the agent's own threads never leave their namespace.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kernbot.errors import KernbotError

T = TypeVar("T")

CLONE_NEWNET = 0x40000000


class NetnsError(KernbotError, OSError):
    """Could not enter the namespace (not root, no CAP_SYS_ADMIN, pid gone...)."""


def same_netns(ns_path: Path) -> bool:
    """True when `ns_path` (a `.../ns/net` link) is the namespace this thread is already in."""
    try:
        theirs = os.stat(ns_path)
        ours = os.stat("/proc/thread-self/ns/net")
    except OSError:
        return False
    return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)


def run_in_netns(ns_path: Path, fn: Callable[[], T], timeout_s: float = 5.0) -> T:
    """Call `fn` on a throwaway thread that first joined the namespace at `ns_path`."""
    if same_netns(ns_path):
        return fn()
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise NetnsError(err, f"setns({ns_path}): {os.strerror(err)}")
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="kernbot-netns", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if error:
        raise error[0]
    if not result:
        raise NetnsError(f"timed out in netns {ns_path}")
    return result[0]
