"""The image's HEALTHCHECK (`python -m kernbot.healthcheck`) against real kernbot processes.

It must probe the port the running command listens on, whether that came from KERNBOT_LISTEN
or from `listen:` in a --config YAML file; the container test (tests/image) runs it inside the
image, this one on the host against a real `kernbot bot` subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from kernbot.healthcheck import _argv, _client_host, check, kernbot_args, probe_urls


def test_server_commands_are_recognised_in_every_launch_form() -> None:
    assert kernbot_args(["/opt/kernbot/bin/python", "/opt/kernbot/bin/kernbot", "agent"]) == [
        "agent"
    ]
    assert kernbot_args(["kernbot", "bot", "--config", "/c.yaml"]) == ["bot", "--config", "/c.yaml"]
    assert kernbot_args(["python3", "-m", "kernbot", "up"]) == ["up"]
    assert kernbot_args(["kernbot", "scan", "x"]) is None
    assert kernbot_args(["python3", "-m", "http.server"]) is None


def test_listen_addresses_become_client_addresses() -> None:
    assert _client_host("0.0.0.0:9101") == "127.0.0.1:9101"
    assert _client_host("[::]:9100") == "[::1]:9100"
    assert _client_host("10.0.0.5:9100") == "10.0.0.5:9100"


def test_port_from_the_yaml_config(tmp_path: Path, monkeypatch: object) -> None:
    cfg = tmp_path / "bot.yaml"
    cfg.write_text("listen: 127.0.0.1:9555\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERNBOT_")}
    old = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        assert probe_urls(["bot", "--config", str(cfg)]) == ["http://127.0.0.1:9555/healthz"]
        assert probe_urls(["agent"]) == ["http://127.0.0.1:9101/healthz"]
        assert probe_urls(["up"]) == [
            "http://127.0.0.1:9100/healthz",
            "http://127.0.0.1:9101/healthz",
        ]
    finally:
        os.environ.clear()
        os.environ.update(old)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_probes_a_real_bot_on_its_configured_port(tmp_path: Path) -> None:
    port = _free_port()
    cfg = tmp_path / "bot.yaml"
    cfg.write_text(
        f"listen: 127.0.0.1:{port}\nstate_dir: {tmp_path / 'state'}\ntoken: healthcheck-test\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KERNBOT_", "SLACK_"))}
    bot = subprocess.Popen(
        [sys.executable, "-m", "kernbot", "bot", "--config", str(cfg)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and bot.poll() is None, "bot did not start"
                time.sleep(0.1)
        # the check reads that process's own command line and environment (the container's
        # main process in the image); other kernbot processes may run on this shared host
        args = kernbot_args(_argv(str(bot.pid), Path("/proc")))
        assert args == ["bot", "--config", str(cfg)]
        os.environ["KERNBOT_LISTEN"] = "127.0.0.1:1"  # this process's env must not matter
        try:
            assert check(bot.pid, args) == 0
        finally:
            os.environ.pop("KERNBOT_LISTEN")
        bot.terminate()
        bot.wait(10)
        assert check(bot.pid, args) == 1  # nothing answers any more
    finally:
        if bot.poll() is None:
            bot.terminate()
            bot.wait(10)
