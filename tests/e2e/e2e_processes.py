"""Real `kernbot` commands as subprocesses for the end-to-end tests, stopped by their own pid.

stdout and stderr go to separate files under the test's tmp dir, so a test can read the console
alerts (stdout) apart from the logs (stderr) while the process runs. Every wait is async-friendly
(`asyncio.to_thread` or short sleeps) because the fake Slack serves from the test's event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from fakes.fake_slack import FakeSlack, ResponseUrlRecorder
from fakes.slack_signing import signed_headers, slash_command_body

TOKEN = "e2e-shared-token"
SIGNING_SECRET = "e2e-signing-secret-0123456789abcdef"
CHANNEL = "C0ALERTS"

_INHERITED_SETTINGS = ("KERNBOT_", "SLACK_")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_host() -> str:
    return f"e2e-{uuid.uuid4().hex[:8]}"


def clean_env(**settings: str) -> dict[str, str]:
    """This environment without any kernbot/Slack settings of the caller, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_SETTINGS)}
    return env | settings


def slack_env(slack: FakeSlack) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "KERNBOT_SLACK_CHANNEL": CHANNEL,
        "KERNBOT_SLACK_API_URL": slack.base_url,
    }


class KernbotProcess:
    """`python -m kernbot COMMAND` with `env`; `ports` are waited on by `wait_serving()`."""

    def __init__(
        self,
        command: str,
        workdir: Path,
        env: dict[str, str],
        ports: list[int],
        argv_prefix: list[str] | None = None,
    ) -> None:
        self.command = command
        self.workdir = workdir
        self.env = env
        self.ports = ports
        self.argv_prefix = argv_prefix or []
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = workdir / f"{command}.stdout"
        self.stderr_path = workdir / f"{command}.stderr"

    def start(self, tty: int | None = None) -> KernbotProcess:
        """Start; with `tty` (a pty's slave fd) as stdin, stdout and stderr instead of files."""
        argv = [*self.argv_prefix, sys.executable, "-m", "kernbot", self.command]
        if tty is not None:
            self.proc = subprocess.Popen(argv, env=self.env, stdin=tty, stdout=tty, stderr=tty)
            return self
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        return self

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        """Both streams, for assertion messages."""
        return f"--- {self.command} stdout ---\n{self.stdout()}\n--- stderr ---\n{self.stderr()}"

    def _wait_serving(self, within_s: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + within_s
        for port in self.ports:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"exited {self.proc.returncode}\n{self.output()}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"not serving {port}\n{self.output()}") from None
                    time.sleep(0.05)

    async def wait_serving(self, within_s: float = 20.0) -> None:
        await asyncio.to_thread(self._wait_serving, within_s)

    async def wait_exit(self, within_s: float) -> int:
        assert self.proc is not None
        return await asyncio.to_thread(self.proc.wait, within_s)

    async def terminate(
        self, within_s: float = 10.0, sig: int = signal.SIGTERM
    ) -> tuple[int, float]:
        """SIGTERM (or `sig`); (exit code, seconds it took to exit)."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        code = await self.wait_exit(within_s)
        return code, time.monotonic() - t0

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


async def wait_until(predicate: Callable[[], Any], within_s: float, interval: float = 0.1) -> Any:
    """The first truthy `predicate()` within `within_s` seconds, else its last (falsy) value."""
    deadline = time.monotonic() + within_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


def message_text(message: dict[str, Any]) -> str:
    """Everything a Slack user sees in one message: fallback text plus all block texts."""
    parts = [str(message.get("text", ""))]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                if isinstance(value, dict | list):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    return "\n".join(parts)


async def slash_command(
    bot_port: int, recorder: ResponseUrlRecorder, command: str, text: str, within_s: float = 20.0
) -> dict[str, Any]:
    """POST a Slack-signed slash command to the bot and return the response_url answer."""
    key = uuid.uuid4().hex[:8]
    body = slash_command_body(command, text, response_url=recorder.url(key))
    headers = signed_headers(SIGNING_SECRET, body)
    url = f"http://127.0.0.1:{bot_port}/slack/events"
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
    answered = await wait_until(
        lambda: [p for p in recorder.posts if p["_key"] == key], within_s, 0.1
    )
    assert answered, f"no answer to {command} {text} within {within_s}s"
    post: dict[str, Any] = answered[0]
    post["_all_text"] = message_text(post)
    return post
