"""ProcReader against the real /proc, asserting on facts this test controls (its own sockets and
child processes), never on what other tests on the machine happen to be doing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernbot.agent.proc import ProcReader


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(37)
    yield sock
    sock.close()


def test_own_loopback_listener_has_our_pid_backlog_and_accept_queue(
    listener: socket.socket,
) -> None:
    port = listener.getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port), timeout=2) for _ in range(3)]
    try:
        deadline = time.monotonic() + 2
        while True:
            [mine] = [ls for ls in ProcReader().listeners() if ls.port == port]
            if mine.accept_queue == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert (mine.family, mine.addr, mine.pid) == ("ipv4", "127.0.0.1", os.getpid())
        assert mine.comm == Path("/proc/self/comm").read_text().strip()
        assert mine.backlog == 37  # ss Send-Q, from sock_diag
        assert mine.accept_queue == 3  # three handshakes completed, none accepted
        assert mine.syn_recv == 0
    finally:
        for c in clients:
            c.close()


def test_ipv6_listener_and_net_pid_view_agree() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.bind(("::1", 0))
    except OSError as exc:
        sock.close()
        pytest.skip(f"cannot bind ::1: {exc}")
    with sock:
        sock.listen(5)
        port = sock.getsockname()[1]
        default = [ls for ls in ProcReader().listeners() if ls.port == port]
        by_pid = [ls for ls in ProcReader(net_pid=os.getpid()).listeners() if ls.port == port]
        assert default == by_pid
        [mine] = default
        assert (mine.family, mine.addr, mine.backlog, mine.pid) == ("ipv6", "::1", 5, os.getpid())


CHILD = """
import sys, time
with open('/proc/self/oom_score_adj', 'w') as f:
    f.write('1000')
with open('/proc/self/comm', 'w') as f:
    f.write(sys.argv[1])
print('ready', flush=True)
time.sleep(60)
"""


def test_child_with_raised_oom_score_adj_tops_the_list() -> None:
    name = f"<!{uuid.uuid4().hex[:6]}>"  # hostile and unique (comm holds 15 bytes)
    child = subprocess.Popen([sys.executable, "-c", CHILD, name], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"  # the raise was allowed
        top = ProcReader().top_by_oom_score(50)
        scores = [p.oom_score or 0 for p in top]
        assert scores == sorted(scores, reverse=True)
        [me] = [p for p in top if p.pid == child.pid]
        assert me.comm == name
        assert me.oom_score_adj == 1000
        assert me.oom_score is not None and me.oom_score >= 1000  # 5.9+: adj adds 1000*2/3
        assert me.oom_score == int(Path(f"/proc/{child.pid}/oom_score").read_text())
        assert me.rss_kb is not None and me.rss_kb > 0
        assert me.cgroup == ProcReader().process(os.getpid()).cgroup  # type: ignore[union-attr]
    finally:
        child.kill()
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]


def test_host_facts_match_other_sources() -> None:
    r = ProcReader()
    mem = r.meminfo()
    phys_kb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024
    assert mem["MemTotal"] == phys_kb
    assert 0 < mem["MemAvailable"] <= mem["MemTotal"]
    assert r.kernel_release() == os.uname().release
    boot_id = r.boot_id()
    assert boot_id is not None and len(boot_id) == 36
    up = r.uptime_s()
    assert up is not None and abs(up - time.clock_gettime(time.CLOCK_BOOTTIME)) < 5
    oom_kills = r.vmstat_oom_kill()
    assert oom_kills is not None and oom_kills >= 0
    ext = r.tcpext()
    assert {"SyncookiesSent", "ListenOverflows", "TCPReqQFullDrop"} <= set(ext)
    assert r.net_sysctls()["net.core.somaxconn"] == int(
        Path("/proc/sys/net/core/somaxconn").read_text()
    )
    psi = r.psi_memory()
    if Path("/proc/pressure/memory").exists():
        assert psi.some is not None and psi.full is not None
