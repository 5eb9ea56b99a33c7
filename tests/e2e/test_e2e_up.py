"""`kernbot up` as a real subprocess: a real memcg OOM kill printed on its console, under a real
pseudo-terminal with the live status line, its token, its settings errors, an unreadable kmsg.

Other engineers OOM-kill processes on this machine at the same time: every assertion picks this
test's kill by the victim's pid and a unique comm.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import pty
import re
import select
import signal
import stat
import threading
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from e2e_processes import KernbotProcess, clean_env, free_port, unique_host, wait_until

from kernbot.bot.console_notifier import ConsoleNotifier
from kernbot.bot.ports import Message
from kernbot.status_line import Snapshot, StatusAwareNotifier, StatusLine, format_status
from lab.memcg import OomResult, memcg_oom

ERASE = "\r\x1b[K"


def _up(tmp_path: Path, argv_prefix: list[str] | None = None, **settings: str) -> KernbotProcess:
    bot_port, agent_port = free_port(), free_port()
    defaults = {
        "KERNBOT_STATE_DIR": str(tmp_path / "state"),
        "KERNBOT_LISTEN": f"127.0.0.1:{bot_port}",
        "KERNBOT_AGENT_LISTEN": f"127.0.0.1:{agent_port}",
        "KERNBOT_HOSTNAME": unique_host(),
        "KERNBOT_FLUSH_TIMEOUT_S": "1",
    }
    env = clean_env(**(defaults | settings))
    return KernbotProcess("up", tmp_path / "up", env, [bot_port, agent_port], argv_prefix)


def _token(up: KernbotProcess) -> str:
    return Path(up.env["KERNBOT_STATE_DIR"], "token").read_text().strip()


async def _agent_status(up: KernbotProcess) -> str:
    """The agent's own view (records read, source health), for failure messages."""
    headers = {"Authorization": f"Bearer {_token(up)}"}
    url = f"http://127.0.0.1:{up.ports[1]}/v1/status"
    try:
        async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as r:
            body = await r.json()
    except (aiohttp.ClientError, ValueError) as exc:
        return f"agent status unavailable: {exc}"
    keep = ("source", "source_healthy", "source_error", "records_read", "records_lost", "events")
    return "agent status: " + repr({k: body.get(k) for k in keep})


def _victim_comm() -> str:
    return f"kbup{uuid.uuid4().hex[:8]}"  # 12 bytes: the kernel keeps it whole


def _alert_for(oom: OomResult, text: str) -> str | None:
    """The console alert block about this kill (from its header to the next header), if any."""
    blocks = re.split(r"(?m)^(?=== )", text)
    return next((b for b in blocks if f"(pid {oom.victim_pid})" in b and "OOM kill" in b), None)


@pytest.mark.root
async def test_up_prints_a_real_oom_kill_on_stdout_and_stops_on_sigterm(
    root_kernel: None, tmp_path: Path, procs: list[KernbotProcess]
) -> None:
    up = _up(tmp_path)
    procs.append(up.start())
    await up.wait_serving()
    await asyncio.sleep(1.0)  # the first start reads the existing ring buffer as history
    history_output = up.stdout()

    comm = _victim_comm()
    oom = await asyncio.to_thread(memcg_oom, victim_comm=comm)
    killed_at = time.monotonic()
    alert = await wait_until(lambda: _alert_for(oom, up.stdout()), 8.0)
    print(f"kill -> console alert: {time.monotonic() - killed_at:.2f}s")
    assert alert, up.output() + await _agent_status(up)
    assert oom.victim_comm == comm
    assert _alert_for(oom, history_output) is None
    lines = alert.splitlines()
    assert lines[0].startswith("== ") and comm in lines[0], alert
    # The diagnosis first (victim and trigger hold about as much: either may be named).
    assert lines[1].startswith("Why: the cgroup hit its 64.0 MiB limit; "), alert
    assert lines[2].startswith("[") and "(of 64.0 MiB limit)" in lines[2], alert
    assert any(
        ln.startswith("  Killed:") and f"{comm} (pid {oom.victim_pid})" in ln for ln in lines
    ), alert
    assert f"memory cgroup {oom.cgroup} hit its limit (64.0 MiB used of a 64.0 MiB limit)" in alert
    assert any(ln.startswith("  Victim oom_score:") and "oom_score_adj 1000" in ln for ln in lines)
    assert f"pid {oom.trigger_pid}" in alert  # the trigger is named apart from the victim
    assert any(ln.startswith("  Kills in 24 h: ") for ln in lines), alert
    assert "Top memory users in the report" in alert, alert

    code, took = await up.terminate()
    print(f"SIGTERM -> exit {code} in {took:.2f}s")
    assert code == 0, up.output()
    assert took < 5.0
    assert "Traceback" not in up.stderr(), up.stderr()
    assert ERASE not in up.stderr(), "no live status line when stdout is not a terminal"


class _PtyReader:
    """Reads everything the child writes to the pseudo-terminal (so it never blocks on a full
    pty buffer) into `text`."""

    def __init__(self, master: int) -> None:
        self.master = master
        self._chunks: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the child closed its side
                return
            if not data:
                return
            self._chunks.append(data)

    @property
    def text(self) -> str:
        return b"".join(self._chunks).decode("utf-8", "replace")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)


@pytest.mark.root
async def test_up_on_a_terminal_redraws_a_status_line_that_never_garbles_alerts(
    root_kernel: None, tmp_path: Path, procs: list[KernbotProcess]
) -> None:
    up = _up(tmp_path, KERNBOT_LOG_LEVEL="WARNING")
    master, slave = pty.openpty()
    reader = _PtyReader(master)
    try:
        procs.append(up.start(tty=slave))
        os.close(slave)
        await up.wait_serving()
        status_seen = await wait_until(lambda: "records" in reader.text, 5.0)
        assert status_seen, reader.text
        comm = _victim_comm()
        oom = await asyncio.to_thread(memcg_oom, victim_comm=comm)
        shown = await wait_until(lambda: f"(pid {oom.victim_pid})" in reader.text, 8.0)
        assert shown, reader.text + await _agent_status(up)
        # the status line names the alert on its next redraw (about a second)
        await wait_until(lambda: "last alert" in reader.text.rsplit(ERASE, 1)[-1], 3.0)
        code, took = await up.terminate()
        assert code == 0 and took < 5.0, reader.text
    finally:
        await asyncio.sleep(0.2)
        reader.close()
    text = reader.text.replace("\r\n", "\n")  # the pty's output processing (onlcr)
    # Every alert line starts at column 0: the status line was erased just before it.
    header = next(ln for ln in text.split("\n") if f"(pid {oom.victim_pid})" in ln and "==" in ln)
    before, _, _ = header.partition("== ")
    assert before in ("", ERASE) or before.endswith(ERASE), repr(header)
    alert_lines = text.split(header, 1)[1].split("\n")[1:6]
    for line in alert_lines:
        assert "records |" not in line, f"status text glued to an alert line: {line!r}"
    redraws = text.count(ERASE + "kernbot up")
    print(f"status line redraws: {redraws}")
    assert redraws >= 2
    last_status = text.rsplit(ERASE + "kernbot up", 1)[-1].split("\r")[0]
    assert "last alert" in last_status and "oom_kill" in last_status, repr(last_status)


async def test_up_generates_a_private_token_and_keeps_it_across_restarts(
    tmp_path: Path, procs: list[KernbotProcess]
) -> None:
    log = tmp_path / "kern.log"
    log.write_text("")
    tokens = []
    for sig in (signal.SIGTERM, signal.SIGINT):  # SIGINT: Ctrl-C in a terminal
        up = _up(tmp_path, KERNBOT_SOURCE=f"file:{log}")
        procs.append(up.start())
        await up.wait_serving()
        token_file = tmp_path / "state" / "token"
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        agent_url = f"http://127.0.0.1:{up.ports[1]}/v1/status"
        async with aiohttp.ClientSession() as s:
            async with s.get(agent_url, headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200, await r.text()
            async with s.get(agent_url, headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401
        tokens.append(token)
        code, took = await up.terminate(sig=sig)
        assert code == 0 and took < 5.0, up.output()
    assert tokens[0] == tokens[1] and len(tokens[0]) >= 32


async def test_up_invalid_settings_one_line_per_field_exit_2(
    tmp_path: Path, procs: list[KernbotProcess]
) -> None:
    up = _up(
        tmp_path,
        KERNBOT_SYN_SAMPLE_INTERVAL_S="soon",
        KERNBOT_HEARTBEAT_INTERVAL_S="often",
    )
    procs.append(up.start())
    assert await up.wait_exit(20) == 2
    lines = [ln for ln in up.stderr().splitlines() if ln.strip()]
    assert len(lines) == 2, lines
    assert any("syn_sample_interval_s" in ln and "'soon'" in ln for ln in lines), lines
    assert any("heartbeat_interval_s" in ln and "'often'" in ln for ln in lines), lines

    up2 = _up(tmp_path / "2", SLACK_BOT_TOKEN="xoxb-x", KERNBOT_LISTEN="no-port-here")
    procs.append(up2.start())
    assert await up2.wait_exit(20) == 2
    lines = [ln for ln in up2.stderr().splitlines() if ln.strip()]
    assert len(lines) == 2, lines
    assert any("KERNBOT_SLACK_CHANNEL" in ln for ln in lines), lines
    assert any("KERNBOT_LISTEN" in ln and "no-port-here" in ln for ln in lines), lines


def _as_unprivileged() -> list[str]:
    """Root without CAP_SYSLOG/CAP_SYS_ADMIN: what dmesg_restrict=1 refuses /dev/kmsg to."""
    return ["setpriv", "--bounding-set", "-syslog,-sys_admin", "--inh-caps", "-syslog,-sys_admin"]


def _require_dmesg_restricted() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to drop capabilities with setpriv")
    if Path("/proc/sys/kernel/dmesg_restrict").read_text().strip() != "1":
        pytest.skip("kernel.dmesg_restrict is 0: /dev/kmsg is readable without CAP_SYSLOG")


@pytest.mark.root
async def test_up_without_kmsg_access_says_what_to_do_or_uses_the_fallback(
    tmp_path: Path, procs: list[KernbotProcess]
) -> None:
    _require_dmesg_restricted()
    up = _up(tmp_path, argv_prefix=_as_unprivileged())
    procs.append(up.start())
    assert await up.wait_exit(20) == 1, up.output()
    err = up.stderr()
    assert "/dev/kmsg" in err and "kernbot doctor" in err and "root" in err, err
    assert "Traceback" not in err, err

    log = tmp_path / "kern.log"
    log.write_text("")
    up2 = _up(tmp_path / "2", argv_prefix=_as_unprivileged(), KERNBOT_FALLBACK_SOURCE=f"file:{log}")
    procs.append(up2.start())
    await up2.wait_serving()
    code, _ = await up2.terminate()
    assert code == 0, up2.output()


# ---- the status line and the notifier wrapper, in process -----------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_status_line_is_erased_before_an_alert_and_remembers_it() -> None:
    screen = _Tty()  # stdout and stderr on one terminal
    notifier = StatusAwareNotifier(ConsoleNotifier(screen), None, clock=lambda: 100.0)
    snap = Snapshot(records_read=7, events={"oom_kill": 1}, source="kmsg")

    def snapshot() -> Snapshot:
        snap.last_alert, snap.last_alert_at = notifier.last_alert, notifier.last_alert_at
        return snap

    status = StatusLine(screen, snapshot, interactive=True, clock=lambda: 130.0, width=lambda: 200)
    notifier.status = status
    status.draw()
    await notifier.post(None, Message(text="OOM kill on h: &lt;!channel&gt; (pid 42)"))
    status.draw()
    out = screen.getvalue()
    first, alert_and_status = out.split("OOM kill on h", 1)
    assert first.endswith(ERASE), repr(out)  # the line was erased before the alert
    assert "\n" + ERASE + "kernbot up" in alert_and_status
    assert "last alert 30s ago: OOM kill on h: <!channel> (pid 42)" in out


def test_status_line_fits_the_terminal_and_escapes_kernel_text() -> None:
    snap = Snapshot(
        records_read=12345,
        events={"oom_kill": 3, "syn_flood": 1},
        source="kmsg",
        last_alert="OOM kill on h: \x1b[2Jevil (pid 1)",
        last_alert_at=0.0,
    )
    line = format_status(snap, now=7200.0, width=60)
    assert len(line) == 59 and "\x1b" not in line
    full = format_status(snap, now=7200.0, width=500)
    assert "12345 records" in full and "3 oom_kill, 1 syn_flood" in full
    assert "2h00m ago" in full and "\\x1b[2Jevil" in full
    down = format_status(Snapshot(source="kmsg", source_healthy=False), 0.0, 200)
    assert "NOT READING" in down and "no alert yet" in down
    risky = Snapshot(source="kmsg", at_risk=["⚠️ cgroup /\x1b[2Jx at 93 % of 128 MiB", "b"])
    shown = format_status(risky, 0.0, 300)
    assert "OOM risk (2): ⚠️ cgroup /\\x1b[2Jx at 93 % of 128 MiB" in shown


async def test_status_line_off_a_terminal_prints_plain_lines() -> None:
    stream = io.StringIO()
    status = StatusLine(stream, Snapshot, interactive=False, every_s=0.05)
    task = asyncio.create_task(status.run())
    await asyncio.sleep(0.18)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    lines = stream.getvalue().split("\n")
    assert 2 <= len([ln for ln in lines if ln.startswith("kernbot up")]) <= 4
    assert "\r" not in stream.getvalue()


# ---- how `up` splits its settings -----------------------------------------------------------


def test_up_settings_split_into_a_loopback_agent_and_bot_sharing_one_token() -> None:
    from pydantic import SecretStr

    from kernbot.commands.up import agent_settings, bot_settings, check, is_loopback, loopback_url
    from kernbot.settings import UpSettings

    up = UpSettings(
        listen="127.0.0.1:9300",
        agent_listen="0.0.0.0:9301",
        slack_channel="C0ALERTS",
        slack_bot_token=SecretStr("xoxb-1"),
        syn_sample_interval_s=2.0,
        hostname="h1",
    )
    bot = bot_settings(up, "tok")
    agent = agent_settings(up, "tok", loopback_url(up.listen, 9300))
    assert bot.listen == "127.0.0.1:9300" and bot.slack_channel == "C0ALERTS"
    assert bot.token is not None and bot.token.get_secret_value() == "tok"
    assert agent.token is not None and agent.token.get_secret_value() == "tok"
    assert agent.listen == "0.0.0.0:9301" and agent.bot_url == "http://127.0.0.1:9300"
    assert agent.advertise_url == "http://127.0.0.1:9301"
    assert agent.syn_sample_interval_s == 2.0 and agent.hostname == "h1"
    assert loopback_url("[::]:80", 80) == "http://[::1]:80"
    assert is_loopback("127.0.0.1:1") and is_loopback("[::1]:1") and not is_loopback("0.0.0.0:1")
    assert check(up) == []
    assert check(up.model_copy(update={"slack_channel": None}))[0].startswith(
        "KERNBOT_SLACK_CHANNEL"
    )
