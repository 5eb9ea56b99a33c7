"""Real SYN floods, made by the lab between two network namespaces, explained by `kernbot scan`.

Each flood targets a fresh listener on an ephemeral port, so the events are picked by
address and port: other tests flood their own listeners on this machine at the same time.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from lab.kmsg import kmsg_raw_since
from lab.scan import ScanRun, run_scan, syn_events_for
from lab.synflood import SynFloodResult, running_syn_flood, syn_flood

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

CASES = [("ipv4", 1), ("ipv4", 0), ("ipv6", 1), ("ipv6", 0)]


def assert_is_our_flood(run: ScanRun, flood: SynFloodResult) -> None:
    assert run.returncode == 0, run.explain()
    ours = syn_events_for(run, flood.port, flood.listen_addr)
    assert len(ours) == 1, f"{len(ours)} events for port {flood.port}\n{run.explain()}"
    event = ours[0]
    assert event["family"] == flood.family
    assert event["addr"] == flood.listen_addr
    assert event["action"] == ("cookies" if flood.syncookies else "drop")


@pytest.mark.parametrize(("family", "syncookies"), CASES)
def test_real_syn_flood_found_by_scan(
    netns_ready: None, tmp_path: Path, family: str, syncookies: int
) -> None:
    flood = syn_flood(family=family, syncookies=syncookies)  # type: ignore[arg-type]
    assert flood.kernel_line is not None, "kernel line suppressed on every attempt"
    shown = flood.listen_addr if family == "ipv4" else f"[{flood.listen_addr}]"
    action = "Sending cookies." if syncookies else "Dropping request."
    assert flood.kernel_line.endswith(
        f"Possible SYN flooding on port {shown}:{flood.port}. {action}"
    )
    counter = "TCPReqQFullDoCookies" if syncookies else "TCPReqQFullDrop"
    assert flood.netstat[counter] > 0, flood.netstat
    assert flood.sent == 200

    assert_is_our_flood(run_scan(), flood)  # no argument: /dev/kmsg
    assert_is_our_flood(run_scan("-", stdin=kmsg_raw_since(flood.seq_before)), flood)
    for args in ([], ["-T"]):
        out = subprocess.run(["dmesg", *args], capture_output=True, text=True, check=True).stdout
        log = tmp_path / f"dmesg{''.join(args)}.txt"
        log.write_text(out)
        assert_is_our_flood(run_scan(str(log)), flood)


def test_ongoing_flood_logs_once_and_counts_in_tcpext(netns_ready: None) -> None:
    """What the agent relies on: one kernel line per listener, the counters keep the score."""
    with running_syn_flood(family="ipv4", syncookies=1) as flood:
        before = flood.netstat().get("SyncookiesSent", 0)
        flood.start_sending(rate=400)
        line = flood.wait_kernel_line(5)
        time.sleep(1.0)
        sent = flood.stop_sending()
        after = flood.netstat()["SyncookiesSent"]
        with open(f"/proc/{flood.listener_pid}/net/netstat") as f:
            via_pid = f.read()
        mentions = flood.kernel_lines()
    if line is None:
        pytest.skip("the kernel's one line for this listener was rate-limited away")
    assert sent > 100
    assert after - before >= sent // 2, (before, after, sent)
    assert "SyncookiesSent" in via_pid
    assert len(mentions) == 1, mentions


def test_sender_checksums_verify() -> None:
    """veth marks local packets checksum-verified, so the kernel would not catch a bad one here."""
    import struct

    from lab import _synsend

    v4 = _synsend.ipv4_packet("192.0.2.99", "192.0.2.2", 40000, 8080)
    ip, tcp = v4[:20], v4[20:]
    assert _synsend.checksum(ip) == 0
    assert _synsend.checksum(ip[12:20] + struct.pack("!BBH", 0, 6, len(tcp)) + tcp) == 0
    assert tcp[13] == 0x02 and struct.unpack("!H", tcp[2:4])[0] == 8080
    v6 = _synsend.ipv6_packet("2001:db8::99", "2001:db8::2", 40000, 8080)
    tcp6 = v6[40:]
    assert _synsend.checksum(v6[8:40] + struct.pack("!I3xB", len(tcp6), 6) + tcp6) == 0
    assert v6[6] == 6 and struct.unpack("!H", v6[4:6])[0] == len(tcp6)
