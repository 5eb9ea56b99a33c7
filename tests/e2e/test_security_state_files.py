"""State on disk is private (issue 8, part 9): agent, bot and `kernbot up`, started with umask
000 on a state dir that already exists 0755, leave directories 0700 and every database, outbox,
WAL and position file 0600; an unprivileged user (`setpriv --reuid=65534`) cannot read them.
The agent's history holds whole OOM reports: with kernel.dmesg_restrict=1 that user must not be
able to read them here either."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_processes import TOKEN, KernbotProcess, clean_env, free_port, wait_until

CORPUS = Path(__file__).parents[1] / "fixtures" / "corpus"
UMASK_000 = ["sh", "-c", 'umask 000 && exec "$@"', "sh"]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A world-traversable directory (pytest's tmp dirs are 0700, which would hide everything
    from `nobody` whatever kernbot does)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to read files as an unprivileged user")
    path = Path(tempfile.mkdtemp(prefix="kernbot-perm-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _nobody_reads(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NOBODY, "cat", str(path)], capture_output=True, text=True, check=False, timeout=30
    )


def _state(open_dir: Path, name: str) -> Path:
    state = open_dir / name
    state.mkdir(mode=0o755)
    state.chmod(0o755)  # as an older kernbot (or a careless operator) left it
    return state


def _start(command: str, workdir: Path, ports: list[int], **settings: str) -> KernbotProcess:
    env = clean_env(KERNBOT_TOKEN=TOKEN, **settings)
    return KernbotProcess(command, workdir, env, ports, argv_prefix=UMASK_000).start()


async def test_state_is_private_whatever_the_umask(open_dir: Path, tmp_path: Path) -> None:
    log = open_dir / "kern.log"
    log.write_text((CORPUS / "oom-6.11-qemu-stressng-global.txt").read_text())
    log.chmod(0o644)
    bot_port, agent_port, up_port, up_agent = (free_port() for _ in range(4))
    states = {n: _state(open_dir, n) for n in ("bot", "agent", "up")}
    procs = [
        _start("bot", tmp_path / "b", [bot_port], KERNBOT_LISTEN=f"127.0.0.1:{bot_port}",
               KERNBOT_STATE_DIR=str(states["bot"])),
        _start("agent", tmp_path / "a", [agent_port], KERNBOT_LISTEN=f"127.0.0.1:{agent_port}",
               KERNBOT_STATE_DIR=str(states["agent"]), KERNBOT_SOURCE=f"file:{log}",
               KERNBOT_BOT_URL=f"http://127.0.0.1:{bot_port}", KERNBOT_HOSTNAME="perm-1",
               KERNBOT_HEARTBEAT_INTERVAL_S="1"),
        _start("up", tmp_path / "u", [up_port], KERNBOT_LISTEN=f"127.0.0.1:{up_port}",
               KERNBOT_AGENT_LISTEN=f"127.0.0.1:{up_agent}", KERNBOT_STATE_DIR=str(states["up"]),
               KERNBOT_SOURCE=f"file:{log}", KERNBOT_HOSTNAME="perm-2"),
    ]  # fmt: skip
    try:
        for p in procs:
            await p.wait_serving()
        wanted = [
            states["bot"] / "kernbot.db",
            states["agent"] / "outbox.db",
            states["agent"] / "history.db",
            states["agent"] / "position.json",
        ]
        found = await wait_until(lambda: all(p.exists() for p in wanted), 30)
        assert found, [str(p) for p in wanted if not p.exists()]
        await asyncio.sleep(2.0)  # WAL files, the up token, a position save
        files = [p for s in states.values() for p in s.rglob("*")]
    finally:
        for p in procs:
            p.cleanup()
    assert any(p.name.endswith("-wal") for p in files), files
    for path in [*states.values(), *files]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {mode:o}"
        if path.is_dir():
            assert mode == 0o700, f"{path} is {mode:o}"
    for path in files:
        if path.is_file():
            refused = _nobody_reads(path)
            assert refused.returncode != 0 and "Permission denied" in refused.stderr, path
    # the control: the same user does read a world-readable file beside the state dirs
    assert _nobody_reads(log).returncode == 0
