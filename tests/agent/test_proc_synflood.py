"""A real SYN flood between two lab namespaces, observed the way the agent would: ProcReader
pointed at the listener's netns (`net_pid`), counters sampled into SynEpisodeTracker."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from kernbot.agent.proc import ProcReader
from kernbot.core.syn.episodes import SPOOFED, SynEpisodeTracker, verdict
from lab.synflood import running_syn_flood

pytestmark = pytest.mark.root


def _wait_for(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.parametrize("syncookies", [1, 0])
def test_real_flood_seen_through_the_listener_netns(netns_ready: None, syncookies: int) -> None:
    with running_syn_flood(syncookies=syncookies, backlog=4) as flood:
        reader = ProcReader(net_pid=flood.listener_pid)
        assert reader.net_sysctls()["net.ipv4.tcp_syncookies"] == syncookies
        assert reader.net_sysctls()["net.ipv4.tcp_max_syn_backlog"] == 16  # the lab's value
        before = reader.tcpext()
        t0 = time.monotonic()
        tracker = SynEpisodeTracker(host="lab", boot_id=reader.boot_id(), quiet_after_s=5)
        tracker.sample(t0, before, reader.listeners(), reader.net_sysctls())

        flood.start_sending(rate=400.0)
        try:
            _wait_for(lambda: any((ls.syn_recv or 0) > 0 for ls in reader.listeners()))
            [ls] = [ls for ls in reader.listeners() if ls.port == flood.port]
            time.sleep(1.5)
            after = reader.tcpext()
            t1 = time.monotonic()
            started = tracker.sample(t1, after, reader.listeners(), reader.net_sysctls())
        finally:
            flood.stop_sending()

        assert (ls.addr, ls.pid, ls.backlog) == ("192.0.2.2", flood.listener_pid, 4)
        assert ls.syn_recv is not None and ls.syn_recv > 0
        grew = {k: after[k] - before[k] for k in after if after[k] != before.get(k)}
        if syncookies:
            assert grew.get("SyncookiesSent", 0) > 100
            assert grew.get("SyncookiesRecv", 0) == 0
        else:
            assert grew.get("TCPReqQFullDrop", 0) > 100
            assert grew.get("SyncookiesSent", 0) == 0
        rates = {k: v / (t1 - t0) for k, v in grew.items()}
        assert verdict(rates, reader.net_sysctls()) == SPOOFED

        [start] = started
        assert start.episode == "start"
        assert start.port == flood.port
        assert start.action == ("cookies" if syncookies else "drop")
        assert start.context.verdict_text == SPOOFED
        assert start.context.listener.pid == flood.listener_pid
