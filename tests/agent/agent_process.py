"""The real agent (`python -m kernbot agent`) as a subprocess, restartable on one state dir."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

TOKEN = "test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AgentProcess:
    """One agent subprocess; `start()` again after `kill9()`/`terminate()` restarts it on the
    same state directory, like a restarted DaemonSet pod."""

    def __init__(self, state_dir: Path, bot_url: str, env: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.env = {
            **os.environ,
            "KERNBOT_STATE_DIR": str(state_dir),
            "KERNBOT_TOKEN": TOKEN,
            "KERNBOT_BOT_URL": bot_url,
            "KERNBOT_LISTEN": f"127.0.0.1:{self.port}",
            "KERNBOT_HOSTNAME": "agent-under-test",
            "KERNBOT_HEARTBEAT_INTERVAL_S": "1",
            "KERNBOT_FLUSH_TIMEOUT_S": "1",
            **(env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.argv_prefix: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / f"agent-{self.starts}.log"

    def start(self, stdin: Any = subprocess.DEVNULL) -> AgentProcess:
        self.starts += 1
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [*self.argv_prefix, sys.executable, "-m", "kernbot", "agent"],
            env=self.env, stdin=stdin, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_serving(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"agent not serving after {timeout}s:\n{self.log()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds it took)."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - t0

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    async def get(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as s, s.get(self.url + path) as r:
            assert r.status == 200, await r.text()
            return await r.json()
