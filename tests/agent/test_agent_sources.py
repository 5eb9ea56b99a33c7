"""Sources on real files and pipes: a log file's rotation, truncation and late appearance;
stdin; a /dev/kmsg the agent may not read."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agent_process import AgentProcess

from fakes.fake_bot import FakeBot
from kernbot.agent.position import Position
from kernbot.agent.sources import Batch, SourceConfig, SourceUnavailable, make_source
from kernbot.agent.sources.logfile import (
    BUSY_POLL_S,
    STORM_BYTES,
    STORM_POLL_S,
    LogFileSource,
    busy_poll_s,
)


def _lines(batch: Batch) -> list[tuple[list[str], Position | None]]:
    """Each line of a batch: its records' texts and the position after it. A file's batch
    holds bytes (`Batch.data`), read here as the pipeline reads them, with the source's reader."""
    if not batch.data:
        return [([r.text for r in item.records], batch.resume_at(item)) for item in batch.items]
    assert batch.reader is not None and batch.place is not None
    out: list[tuple[list[str], Position | None]] = []
    end = batch.start
    for raw in batch.data.splitlines(keepends=True):
        end += len(raw)
        texts = [r.text for r in batch.reader.feed(raw.decode().rstrip("\n"))]
        out.append((texts, batch.place(end)))
    return out


async def _texts(it: AsyncIterator[Batch], want: int, timeout: float = 5.0) -> list[str]:  # noqa: ASYNC109
    out: list[str] = []

    async def take() -> None:
        async for batch in it:
            out.extend(text for texts, _ in _lines(batch) for text in texts)
            if len(out) >= want:
                return

    await asyncio.wait_for(take(), timeout)
    return out


def _append(path: Path, *lines: str) -> None:
    with open(path, "a") as f:
        f.writelines(line + "\n" for line in lines)


async def test_file_source_follows_late_file_rotation_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    src = LogFileSource(log, resume=None)
    await src.open()
    it = src.batches()
    try:
        task = asyncio.ensure_future(_texts(it, 2))
        await asyncio.sleep(0.3)
        _append(log, "[    1.000000] appeared late", "[    2.000000] second")  # file appears late
        assert await task == ["appeared late", "second"]

        os.rename(log, tmp_path / "kern.log.1")  # rotation: rename, then a new file
        _append(tmp_path / "kern.log.1", "[    3.000000] last words of the old file")
        _append(log, "[    4.000000] new file")
        assert await _texts(it, 2) == ["last words of the old file", "new file"]

        log.write_text("[    5.000000] after truncation\n")  # copytruncate, then a write
        assert await _texts(it, 1) == ["after truncation"]
    finally:
        await it.aclose()  # type: ignore[attr-defined]
        await src.close()


async def test_a_file_in_a_storm_is_read_less_often(tmp_path: Path) -> None:
    """A growing file is read every `BUSY_POLL_S`; after a read of `STORM_BYTES` or more (a
    flood: thousands of lines a second) the next read waits `STORM_POLL_S`, and once reads are
    small again `BUSY_POLL_S`. Nothing is lost either way."""
    assert busy_poll_s(STORM_BYTES - 1) == BUSY_POLL_S < STORM_POLL_S == busy_poll_s(STORM_BYTES)
    log = tmp_path / "kern.log"
    log.write_text("")
    src = LogFileSource(log, resume=None)
    await src.open()
    it = src.batches()
    try:
        await asyncio.wait_for(anext(it), 5)  # the (empty) backlog of the first start
        storm = [f"[ {i:6}.000000] flood line {i:06} " + "x" * 40 for i in range(1200)]
        _append(log, *storm)  # ~86 KB at once
        assert await _texts(it, 1200) == [line.split("] ", 1)[1] for line in storm]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        _append(log, "[ 2000.000000] after the storm")
        assert await _texts(it, 1) == ["after the storm"]
        after_storm = loop.time() - t0
        t0 = loop.time()
        _append(log, "[ 2001.000000] a quiet line")
        assert await _texts(it, 1) == ["a quiet line"]
        after_quiet = loop.time() - t0
        assert after_storm >= STORM_POLL_S - 0.05
        assert after_quiet < after_storm
    finally:
        await it.aclose()  # type: ignore[attr-defined]
        await src.close()


async def test_file_source_resumes_at_inode_and_offset(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    _append(log, "[    1.000000] one", "[    2.000000] two")
    src = LogFileSource(log, resume=None)
    await src.open()
    it = src.batches()
    positions: list[Position | None] = []
    async for batch in it:
        positions.extend(pos for _, pos in _lines(batch))
        if len(positions) >= 1:
            break
    await it.aclose()  # type: ignore[attr-defined]
    await src.close()
    first = positions[0]
    assert first is not None and first.inode == os.stat(log).st_ino
    _append(log, "[    3.000000] three")
    again = LogFileSource(log, resume=first)
    await again.open()
    it2 = again.batches()
    try:
        assert await _texts(it2, 2) == ["two", "three"]
    finally:
        await it2.aclose()  # type: ignore[attr-defined]
        await again.close()


async def test_unknown_source_names_the_choices() -> None:
    with pytest.raises(SourceUnavailable, match=r"kmsg.*stdin"):
        make_source("tcp:1.2.3.4", SourceConfig(arg=None, resume=None, boot_id=None))


async def test_stdin_source_in_a_real_agent(fake_bot: FakeBot, agent_factory: Any) -> None:
    from lab.scan import run_scan  # noqa: F401 - the lab is importable; corpus below is real

    corpus = Path(__file__).parent.parent / "fixtures" / "corpus"
    text = (corpus / "oom-rhel7-3.10.0-514-global.txt").read_bytes()
    agent: AgentProcess = agent_factory(fake_bot, {"KERNBOT_SOURCE": "stdin"})
    agent.start(stdin=subprocess.PIPE)
    assert agent.proc is not None and agent.proc.stdin is not None
    agent.proc.stdin.write(text)
    agent.proc.stdin.close()
    got = await fake_bot.wait_for(lambda e: e["kind"] == "oom_kill", timeout=10)
    assert got, agent.log()
    assert got[0]["host"] == "agent-under-test"
    code, took = agent.terminate()
    assert code == 0 and took < 5


def _as_unprivileged() -> list[str]:
    """Root without CAP_SYSLOG/CAP_SYS_ADMIN: what dmesg_restrict=1 refuses /dev/kmsg to."""
    return ["setpriv", "--bounding-set", "-syslog,-sys_admin", "--inh-caps", "-syslog,-sys_admin"]


def _dmesg_restricted() -> str | None:
    if os.geteuid() != 0:
        return "needs root to drop capabilities with setpriv"
    if Path("/proc/sys/kernel/dmesg_restrict").read_text().strip() != "1":
        return "kernel.dmesg_restrict is 0: /dev/kmsg is readable without CAP_SYSLOG"
    return None


@pytest.mark.root
async def test_unreadable_kmsg_exits_nonzero_naming_the_fix(
    fake_bot: FakeBot, agent_factory: Any
) -> None:
    if why := _dmesg_restricted():
        pytest.skip(why)
    agent: AgentProcess = agent_factory(fake_bot)
    agent.argv_prefix = _as_unprivileged()
    agent.start()
    assert agent.proc is not None
    assert agent.proc.wait(15) == 1
    out = agent.log()
    assert "CAP_SYSLOG" in out and "KERNBOT_SOURCE=journal" in out, out


@pytest.mark.root
async def test_unreadable_kmsg_uses_the_configured_fallback(
    fake_bot: FakeBot, agent_factory: Any, tmp_path: Path
) -> None:
    if why := _dmesg_restricted():
        pytest.skip(why)
    log = tmp_path / "kern.log"
    log.write_text("")
    agent: AgentProcess = agent_factory(fake_bot, {"KERNBOT_FALLBACK_SOURCE": f"file:{log}"})
    agent.argv_prefix = _as_unprivileged()
    agent.start()
    await asyncio.to_thread(agent.wait_serving)
    status = await agent.get("/v1/status")
    assert status["source"] == f"file:{log}" and status["source_healthy"]
    code, _ = agent.terminate()
    assert code == 0
    assert sys.executable  # the agent ran under the same interpreter


def test_the_one_kmsg_reader_names_the_fix_and_rewinds_after_its_probe(tmp_path: Path) -> None:
    from kernbot.agent.sources.kmsg import KmsgUnreadable, open_kmsg, read_ready

    with pytest.raises(KmsgUnreadable) as missing:
        open_kmsg(tmp_path / "kmsg")
    assert str(missing.value).startswith(f"cannot read {tmp_path / 'kmsg'}: it does not exist")
    assert "KERNBOT_SOURCE=journal" in missing.value.fix
    if os.geteuid() != 0 or not os.path.exists("/dev/kmsg"):
        pytest.skip("needs root and /dev/kmsg for the probe's rewind")
    fd = open_kmsg()
    plain = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        (first,) = read_ready(fd, limit=1).records
        assert first == os.read(plain, 16384), "the probe read must not lose the oldest record"
    finally:
        os.close(fd)
        os.close(plain)
