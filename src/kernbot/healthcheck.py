"""`python -m kernbot.healthcheck`: the container image's HEALTHCHECK.

A fixed port in the Dockerfile is wrong for someone: the bot listens on 9100, the agent on 9101,
and either may be moved by KERNBOT_LISTEN or by `listen:` in a `--config` YAML file. So this
finds the running `kernbot agent|bot|up` process in the container, parses its own command line
with kernbot's parser, loads the same settings class from that process's environment (and its
config file), and GETs /healthz on the address it actually listens on. Exit 0 healthy, 1 not.
A container running another command (`scan`, `doctor`) has nothing to probe and is healthy.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

SERVERS = ("agent", "bot", "up")
TIMEOUT_S = 4.0


def _argv(pid: str, proc: Path) -> list[str]:
    try:
        raw = (proc / pid / "cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0") if a]


def kernbot_args(argv: list[str]) -> list[str] | None:
    """The arguments after the `kernbot` program in `argv` (`kernbot`, `python -m kernbot`,
    `/opt/kernbot/bin/python /opt/kernbot/bin/kernbot`), if it runs a server command."""
    for i, arg in enumerate(argv[:3]):
        module = arg == "-m" and argv[i + 1 : i + 2] == ["kernbot"]
        if os.path.basename(arg) == "kernbot" or module:
            rest = argv[i + 1 :] if arg != "-m" else argv[i + 2 :]
            command = next((a for a in rest if not a.startswith("-")), None)
            return rest if command in SERVERS else None
    return None


def find_server(proc: Path = Path("/proc")) -> tuple[int, list[str]] | None:
    """(pid, kernbot arguments) of the lowest-pid kernbot server process visible here."""
    found: list[tuple[int, list[str]]] = []
    try:
        entries = [e for e in os.listdir(proc) if e.isdigit()]
    except OSError:
        return None
    for entry in entries:
        if int(entry) == os.getpid():
            continue
        args = kernbot_args(_argv(entry, proc))
        if args is not None:
            found.append((int(entry), args))
    return min(found) if found else None


def _environ(pid: int, proc: Path) -> dict[str, str] | None:
    try:
        raw = (proc / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    out: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.decode("utf-8", "surrogateescape").partition("=")
        if sep:
            out[key] = value
    return out


def probe_urls(args: list[str]) -> list[str]:
    """The /healthz URLs of the server these kernbot arguments start (settings as it loads them)."""
    from kernbot.cli import build_parser
    from kernbot.settings import AgentSettings, BotSettings, UpSettings, load_settings

    command = next(a for a in args if not a.startswith("-"))
    parsed, _ = build_parser(command).parse_known_args(args)
    config = getattr(parsed, "config", None)
    listens: list[str]
    if command == "up":
        up = load_settings(UpSettings, config)
        listens = [up.listen, up.agent_listen]
    elif command == "agent":
        listens = [load_settings(AgentSettings, config).listen]
    else:
        listens = [load_settings(BotSettings, config).listen]
    return [f"http://{_client_host(listen)}/healthz" for listen in listens]


def _client_host(listen: str) -> str:
    host, _, port = listen.rpartition(":")
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]", "[::]": "[::1]"}.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def main() -> int:
    server = find_server()
    if server is None:
        print("no kernbot agent/bot/up process here: nothing to probe")
        return 0
    return check(*server)


def check(pid: int, args: list[str]) -> int:
    """Probe the server `pid` runs with kernbot arguments `args`: 0 healthy, 1 not."""
    env = _environ(pid, Path("/proc"))
    saved = dict(os.environ)
    if env is not None:  # the settings that process loaded, not this exec's
        os.environ.clear()
        os.environ.update(env)
    try:
        urls = probe_urls(args)
    except Exception as exc:  # settings errors: the server would not have started either
        print(f"kernbot {' '.join(args)}: cannot load its settings: {exc}")
        return 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
                status = resp.status
        except (urllib.error.URLError, OSError) as exc:
            print(f"{url}: {exc}")
            return 1
        if status != 200:
            print(f"{url}: HTTP {status}")
            return 1
        print(f"{url}: 200")
    return 0


if __name__ == "__main__":
    sys.exit(main())
