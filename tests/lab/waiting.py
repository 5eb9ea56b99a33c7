"""Waiting for something the kernel or a daemon does asynchronously, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable


def poll_until(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """True as soon as `check()` is; False if it still is not after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
