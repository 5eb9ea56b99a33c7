"""Run the real `kernbot scan --json` the way a user does, and pick out the events of one test.

A subprocess (`python -m kernbot`), not an import: the tests check the command's contract (exit
code, one JSON object per line), and a fresh process reads /dev/kmsg exactly as a user would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class ScanRun:
    returncode: int
    events: list[dict[str, Any]]
    stdout: str
    stderr: str

    def select(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Events for which `predicate` holds (other tests' events are on this machine too)."""
        return [e for e in self.events if predicate(e)]

    def explain(self) -> str:
        """For assertion messages: exit code, stderr and the start of stdout."""
        out, err = self.stdout[:3000], self.stderr[-3000:]
        return f"exit {self.returncode}\nstderr: {err}\nstdout: {out}"


def run_scan(
    *args: str, stdin: str | None = None, json_output: bool = True, timeout: float = 60.0
) -> ScanRun:
    """`python -m kernbot scan [--json] ARGS...`; JSON lines of stdout are parsed into `events`."""
    argv = [sys.executable, "-m", "kernbot", "scan", *(["--json"] if json_output else []), *args]
    proc = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )
    events: list[dict[str, Any]] = []
    if json_output:
        for raw in proc.stdout.splitlines():
            line = raw.strip()
            if line.startswith("{"):
                events.append(json.loads(line))
    return ScanRun(proc.returncode, events, proc.stdout, proc.stderr)


def oom_events_for(run: ScanRun, victim_pid: int) -> list[dict[str, Any]]:
    """The oom_kill events whose victim is `victim_pid`."""
    return run.select(
        lambda e: e.get("kind") == "oom_kill" and (e.get("victim") or {}).get("pid") == victim_pid
    )


def syn_events_for(run: ScanRun, port: int, addr: str | None = None) -> list[dict[str, Any]]:
    """The syn_flood events about `port` (and `addr`, when given)."""
    return run.select(
        lambda e: (
            e.get("kind") == "syn_flood"
            and e.get("port") == port
            and (addr is None or e.get("addr") == addr)
        )
    )
