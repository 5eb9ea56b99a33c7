"""Starting and stopping the lab's helper processes: by pid only, never by name."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from typing import Any

PYTHON = sys.executable
HERE = os.path.dirname(os.path.abspath(__file__))


def helper_path(name: str) -> str:
    """Absolute path of a helper script shipped in tests/lab (run as a script, not imported)."""
    return os.path.join(HERE, name)


def spawn(argv: list[str]) -> subprocess.Popen[str]:
    """Start a helper with a line-buffered text stdout we can wait on."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def wait_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    """Wait until the helper prints a line starting with `prefix`; raise with its stderr if not."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not sel.select(min(left, 0.5)):
                if proc.poll() is not None:
                    break
                continue
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith(prefix):
                return line.rstrip("\n")
            if line.startswith("error"):
                raise RuntimeError(f"helper {proc.args!r}: {line.strip()}")
    stop(proc)
    err = proc.stderr.read() if proc.stderr else ""
    raise RuntimeError(
        f"helper {proc.args!r} did not print {prefix!r} within {timeout}s "
        f"(exit {proc.returncode}): {err.strip()[-2000:]}"
    )


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGKILL, timeout: float = 5.0) -> None:
    """Signal our own child by pid (if still running) and reap it; close its pipes."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None:
            stream.close()
