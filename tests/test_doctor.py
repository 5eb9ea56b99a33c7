"""`kernbot doctor` against this real host, against small proc/cgroup trees made to show each gap,
and against real HTTP servers on loopback standing in for the bot and Slack's auth.test."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kernbot.agent.sources.kmsg import CAP_SYSLOG, has_capability, kmsg_denied_why
from kernbot.commands.doctor import (
    HostPaths,
    check_cgroup,
    check_clock,
    check_http,
    check_journal,
    check_kmsg,
    check_proc,
    check_proc_access,
    check_syncookies,
)
from kernbot.settings import UpSettings


def _proc_tree(tmp_path: Path, *, syncookies: int = 1, restrict: int = 0) -> Path:
    proc = tmp_path / "proc"
    (proc / "sys/net/ipv4").mkdir(parents=True)
    (proc / "sys/kernel").mkdir(parents=True)
    (proc / "sys/net/ipv4/tcp_syncookies").write_text(f"{syncookies}\n")
    (proc / "sys/kernel/dmesg_restrict").write_text(f"{restrict}\n")
    (proc / "meminfo").write_text("MemTotal: 1024 kB\n")
    for pid, comm in ((1, "systemd"), (42, "sshd")):
        (proc / str(pid)).mkdir()
        (proc / str(pid) / "comm").write_text(comm + "\n")
    return proc


def test_this_host_as_root_can_read_kmsg() -> None:
    if os.geteuid() != 0 or not os.path.exists("/dev/kmsg"):
        pytest.skip("needs root and /dev/kmsg")
    f = check_kmsg(HostPaths())
    assert f.status == "ok", f


def test_missing_kmsg_points_at_the_journal_mode(tmp_path: Path) -> None:
    paths = HostPaths(kmsg=tmp_path / "kmsg", proc=_proc_tree(tmp_path))
    f = check_kmsg(paths)
    assert f.status == "fail"
    assert "journal" in f.fix
    journal = tmp_path / "journal"
    (journal / "abc").mkdir(parents=True)
    j = check_journal(HostPaths(journal_dirs=(journal,)), kmsg_ok=False)
    assert j.status == "ok"
    assert "needs journal mode" in j.detail


def test_syncookies_zero_and_two_warn_with_the_fix(tmp_path: Path) -> None:
    f0 = check_syncookies(HostPaths(proc=_proc_tree(tmp_path / "a", syncookies=0)))
    assert (f0.status, "tcp_syncookies=1" in f0.fix) == ("warn", True)
    f2 = check_syncookies(HostPaths(proc=_proc_tree(tmp_path / "b", syncookies=2)))
    assert f2.status == "warn"
    assert check_syncookies(HostPaths(proc=_proc_tree(tmp_path / "c"))).status == "ok"


def test_proc_without_meminfo_fails(tmp_path: Path) -> None:
    assert check_proc(HostPaths(proc=tmp_path)).status == "fail"
    assert check_proc(HostPaths(proc=_proc_tree(tmp_path))).status == "ok"


def test_cgroup_versions(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("cpu io memory pids\n")
    assert check_cgroup(HostPaths(sys_fs_cgroup=v2)).detail.startswith("cgroup v2")
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    assert check_cgroup(HostPaths(sys_fs_cgroup=v1)).detail.startswith("cgroup v1")
    assert check_cgroup(HostPaths(sys_fs_cgroup=tmp_path / "none")).status == "warn"


def test_clock_skew() -> None:
    assert check_clock("Mon, 01 Jan 2001 00:00:00 GMT").status == "warn"
    assert check_clock(None).status == "skip"


@pytest.fixture
def servers() -> Iterator[dict[str, Any]]:
    """A bot /healthz and a Slack auth.test that checks the bearer token, on loopback."""
    seen: dict[str, Any] = {"auth": []}

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def auth_test(req: web.Request) -> web.Response:
        auth = req.headers.get("Authorization", "")
        seen["auth"].append(auth)
        if auth != "Bearer xoxb-good":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response({"ok": True, "user": "kernbot", "team": "T"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/api/auth.test", auth_test)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    seen["url"] = f"http://127.0.0.1:{port}"
    seen["loop"] = loop
    yield seen
    loop.run_until_complete(runner.cleanup())
    loop.close()


def test_bot_and_slack_reachability(servers: dict[str, Any]) -> None:
    loop: asyncio.AbstractEventLoop = servers["loop"]
    base = servers["url"]
    good = UpSettings(slack_bot_token="xoxb-good", slack_api_url=f"{base}/api/")
    found = {f.check: f for f in loop.run_until_complete(check_http(good, base))}
    assert found["bot"].status == "ok"
    assert found["slack"].status == "ok"
    assert found["clock"].status == "ok"
    bad = UpSettings(slack_bot_token="xoxb-bad", slack_api_url=f"{base}/api/")
    found = {f.check: f for f in loop.run_until_complete(check_http(bad, "http://127.0.0.1:9"))}
    assert found["bot"].status == "fail"
    assert found["slack"].status == "fail"
    assert "invalid_auth" in found["slack"].detail
    assert servers["auth"] == ["Bearer xoxb-good", "Bearer xoxb-bad"]


def test_exit_code_is_the_worst_finding(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KERNBOT_", "SLACK_"))}
    env["KERNBOT_PROC_ROOT"] = str(_proc_tree(tmp_path, syncookies=0))
    env["KERNBOT_BOT_URL"] = "http://127.0.0.1:9"
    res = subprocess.run(
        [sys.executable, "-m", "kernbot", "doctor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2, res.stdout + res.stderr
    assert "FAIL bot" in res.stdout
    assert "WARN syncookies" in res.stdout


def _status_with_capeff(tmp_path: Path, cap_eff: int) -> Path:
    status = tmp_path / "status"
    status.write_text(f"Name:\tkernbot\nCapPrm:\t{cap_eff:016x}\nCapEff:\t{cap_eff:016x}\n")
    return status


def test_capeff_is_read_from_this_process_status(tmp_path: Path) -> None:
    assert has_capability(_status_with_capeff(tmp_path, 1 << CAP_SYSLOG), CAP_SYSLOG) is True
    assert has_capability(_status_with_capeff(tmp_path, 0), CAP_SYSLOG) is False
    assert has_capability(tmp_path / "missing", CAP_SYSLOG) is None
    assert has_capability(Path("/proc/self/status"), CAP_SYSLOG) is not None


@pytest.mark.parametrize(
    ("err", "restrict", "cap", "says", "not_says"),
    [
        # the device cgroup: EPERM although CAP_SYSLOG is there -> never blame dmesg_restrict
        (errno.EPERM, 1, True, "device allow-list", "dmesg_restrict=1 and no CAP_SYSLOG"),
        (errno.EPERM, 0, False, "device allow-list", "no CAP_SYSLOG"),
        (errno.EPERM, 1, False, "dmesg_restrict=1 and no CAP_SYSLOG", "CAP_SYSLOG is present"),
        (errno.EACCES, 1, False, "file mode", "device allow-list"),
    ],
)
def test_kmsg_denial_names_the_gate_that_refused(
    err: int, restrict: int, cap: bool, says: str, not_says: str
) -> None:
    why, fix = kmsg_denied_why(OSError(err, os.strerror(err)), restrict, cap)
    assert says in why and not_says not in why, why
    assert fix


def test_proc_access_findings_never_raise_and_match_the_agent(tmp_path: Path) -> None:
    from kernbot.agent.proc.reader import ProcReader, access_findings

    found = check_proc_access(HostPaths(proc=Path("/proc")), 1)
    reader = ProcReader(Path("/proc"), net_pid=1)  # EACCES on some hosts: must not raise
    assert reader.findings == access_findings(Path("/proc"), 1)
    assert found.status == ("warn" if reader.findings else "ok")
    try:
        os.stat("/proc/1/ns/net")
    except PermissionError:
        assert any("/proc/1/ns/net" in f for f in reader.findings)
    assert check_proc_access(HostPaths(proc=_proc_tree(tmp_path)), None).status == "ok"
