"""ProcReader over a captured proc root (tests/fixtures/proc/snapshot, see its MANIFEST.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernbot.agent.proc import ProcReader
from kernbot.agent.proc.meminfo import parse_meminfo
from kernbot.agent.proc.netstat import parse_netstat
from kernbot.agent.proc.processes import memory_cgroup
from kernbot.agent.proc.psi import parse_psi
from kernbot.agent.proc.sockets import TcpRow, parse_tcp_table, syn_recv_per_listener
from kernbot.agent.proc.vmstat import oom_kill_count
from kernbot.core.context import Psi
from kernbot.core.syn.episodes import SPOOFED, verdict

SNAPSHOT = Path(__file__).resolve().parents[1] / "fixtures" / "proc" / "snapshot"


@pytest.fixture
def reader() -> ProcReader:
    return ProcReader(SNAPSHOT)


def test_memory_facts(reader: ProcReader) -> None:
    mem = reader.meminfo()
    assert mem["MemTotal"] == 24683656
    assert mem["MemAvailable"] == 24262224
    assert "SwapTotal" in mem
    assert reader.psi_memory().model_dump() == {
        "some": {"avg10": 0.0, "avg60": 0.0, "avg300": 0.0, "total": 2726},
        "full": {"avg10": 0.0, "avg60": 0.0, "avg300": 0.0, "total": 1338},
    }
    assert reader.vmstat_oom_kill() == 2
    assert reader.vm_sysctls() == {
        "vm.overcommit_memory": 0,
        "vm.panic_on_oom": 0,
        "vm.oom_kill_allocating_task": 0,
    }


def test_host_identity(reader: ProcReader) -> None:
    assert reader.kernel_release() == "6.18.44-fc-v782"
    assert reader.boot_id() == "c4b61f54-759b-4ece-8029-6d58ecdd0590"
    assert reader.uptime_s() == pytest.approx(679.45)


def test_tcpext_and_sysctls_from_a_real_flood(reader: ProcReader) -> None:
    ext = reader.tcpext()
    assert ext["SyncookiesSent"] == 600
    assert ext["SyncookiesRecv"] == 0
    assert ext["TCPReqQFullDoCookies"] == 600
    assert len(ext) > 100  # every TcpExt counter, not just the SYN ones
    assert reader.net_sysctls() == {
        "net.ipv4.tcp_syncookies": 1,
        "net.ipv4.tcp_max_syn_backlog": 16,
        "net.core.somaxconn": 4096,
        "net.ipv4.tcp_synack_retries": 5,
    }


def test_listener_under_flood(reader: ProcReader) -> None:
    [ls] = reader.listeners()
    assert (ls.family, ls.addr, ls.port) == ("ipv4", "192.0.2.2", 33933)
    assert (ls.pid, ls.comm) == (19133, "python")
    assert ls.syn_recv == 5  # the real SYN_RECV (03) rows of the capture
    assert ls.accept_queue == 0
    assert ls.backlog is None  # not in /proc/net/tcp; only sock_diag knows it


def test_top_by_oom_score_highest_first_with_pod_identity(reader: ProcReader) -> None:
    top = reader.top_by_oom_score(3)
    assert [(p.pid, p.comm, p.oom_score) for p in top] == [
        (4243, "runc:[2:INIT]", 1999),
        (4242, "<!channel>", 1800),
        (19029, "python", 666),
    ]
    runc, channel = top[0], top[1]
    assert runc.pod_uid == "7a6b5c4d-0000-1111-2222-333344445555"
    assert runc.container_id == "aa11bb22cc33dd44ee55ff6600778899aabbccddeeff00112233445566778899"
    assert runc.rss_kb == 2048
    assert channel.cgroup is not None and channel.cgroup.startswith("/kubepods/burstable/pod0f1c")
    assert channel.pod_uid == "0f1c2d3e-1111-2222-3333-444455556666"
    assert (channel.oom_score_adj, channel.rss_kb) == (968, 524288)


def test_vanished_and_kernel_like_processes_do_not_break_the_list(reader: ProcReader) -> None:
    everyone = reader.top_by_oom_score(100)
    pids = [p.pid for p in everyone]
    assert 4245 not in pids  # only comm left: no oom_score to rank by
    [kthread] = [p for p in everyone if p.pid == 4244]
    assert (kthread.comm, kthread.rss_kb, kthread.oom_score) == ("a b/c", None, 0)
    assert reader.process(4245) is not None  # comm alone is still a process record
    assert reader.process(999999) is None
    assert reader.top_by_oom_score(0) == []


def test_missing_root_gives_empty_answers(tmp_path: Path) -> None:
    r = ProcReader(tmp_path / "nope")
    assert r.meminfo() == {}
    assert r.psi_memory() == Psi()
    assert r.vmstat_oom_kill() is None
    assert r.tcpext() == {}
    assert r.net_sysctls() == {}
    assert r.listeners() == []
    assert r.top_by_oom_score() == []
    assert (r.kernel_release(), r.boot_id(), r.uptime_s()) == (None, None, None)


def test_snapshot_verdict_is_spoofed(reader: ProcReader) -> None:
    """600 cookies sent, none came back: the capture is a spoofed flood."""
    ext = reader.tcpext()
    rates = {k: ext[k] / 2.0 for k in ("SyncookiesSent", "SyncookiesRecv", "ListenOverflows")}
    assert verdict(rates, reader.net_sysctls()) == SPOOFED


# ---- parsers on odd input


def test_parsers_skip_garbage() -> None:
    assert parse_meminfo("MemTotal: 10 kB\nbogus\nX:\nHugePages_Total:   3\nY: nan kB\n") == {
        "MemTotal": 10,
        "HugePages_Total": 3,
    }
    assert parse_psi("some avg10=1.50 avg60=x total=7\nweird line\n") == {
        "some": {"avg10": 1.5, "total": 7}
    }
    assert oom_kill_count("pgfault 3\n") is None
    assert parse_netstat("TcpExt: A B\nTcpExt: 1 2\nIpExt: C\nIpExt: 9\n") == {
        "TcpExt": {"A": 1, "B": 2},
        "IpExt": {"C": 9},
    }
    assert parse_netstat("TcpExt: A B\nIpExt: 1 2\n") == {}


def test_memory_cgroup_prefers_the_v1_memory_line() -> None:
    assert memory_cgroup("12:memory:/a\n0::/b\n") == "/a"
    assert memory_cgroup("4:cpu,memory:/c\n") == "/c"
    assert memory_cgroup("0::/kubepods.slice/x.scope\n") == "/kubepods.slice/x.scope"
    assert memory_cgroup("1:name=systemd:/\n") is None


TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000005 00:00000000 00000000     0        0 555 1 0
   1: 0000000000000000FFFF00000100007F:01BB 0000000000000000FFFF00006300C0:9C40 03 00000000:00000000 01:00000066 00000001     0        0 0 0 0
   2: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 556 1 0
   garbage line
"""  # noqa: E501


def test_tcp6_rows_and_syn_recv_attribution() -> None:
    rows = parse_tcp_table(TCP6, "ipv6")
    assert [(r.addr, r.port, r.state) for r in rows] == [
        ("::", 443, 0x0A),
        ("::ffff:127.0.0.1", 443, 0x03),
        ("::1", 22, 0x0A),
    ]
    assert rows[0].rx_queue == 5
    v4_any = TcpRow("ipv4", "0.0.0.0", 443, 0x0A, 0, 0, 777)
    v4_req = TcpRow("ipv4", "10.0.0.1", 443, 0x03, 0, 0, 0)
    listening = [r for r in rows if r.state == 0x0A] + [v4_any]
    counts = syn_recv_per_listener(listening, [*rows, v4_req])
    assert counts == {555: 1, 556: 0, 777: 1}  # each family's wildcard takes its own requests
