"""SYN flood episodes from a kernel line plus TcpExt samples, on a fake clock (plain floats)."""

from __future__ import annotations

import pytest

from kernbot.core.advice import advise
from kernbot.core.events import SynFloodEvent
from kernbot.core.syn.episodes import (
    COUNTERS,
    INSUFFICIENT,
    REAL_CLIENTS,
    SPOOFED,
    SynEpisodeTracker,
    verdict,
)
from kernbot.core.wire import Listener

COOKIES_ON = {"net.ipv4.tcp_syncookies": 1, "net.core.somaxconn": 4096}
COOKIES_OFF = {"net.ipv4.tcp_syncookies": 0}
T0 = 1_700_000_000.0


def counters(**kw: int) -> dict[str, int]:
    base = dict.fromkeys(COUNTERS, 0)
    base.update(kw)
    return base


LISTENER = Listener(
    family="ipv4", addr="0.0.0.0", port=443, pid=42, comm="<!channel>", backlog=511, syn_recv=200
)


@pytest.mark.parametrize(
    ("rates", "sysctls", "expected"),
    [
        ({"SyncookiesSent": 5000.0, "SyncookiesRecv": 3.0}, COOKIES_ON, SPOOFED),
        ({"SyncookiesSent": 800.0, "SyncookiesRecv": 700.0}, COOKIES_ON, REAL_CLIENTS),
        (
            {"SyncookiesSent": 100.0, "SyncookiesRecv": 30.0, "ListenOverflows": 20.0},
            COOKIES_ON,
            REAL_CLIENTS,
        ),
        ({"SyncookiesSent": 100.0, "SyncookiesRecv": 30.0}, COOKIES_ON, INSUFFICIENT),
        ({"TCPReqQFullDrop": 900.0}, COOKIES_OFF, SPOOFED),
        ({"TCPReqQFullDrop": 50.0, "ListenOverflows": 40.0}, COOKIES_OFF, REAL_CLIENTS),
        ({"ListenOverflows": 12.0, "ListenDrops": 12.0}, COOKIES_ON, REAL_CLIENTS),
        ({"SyncookiesSent": 0.5}, COOKIES_ON, INSUFFICIENT),
        ({}, {}, INSUFFICIENT),
    ],
)
def test_verdict(rates: dict[str, float], sysctls: dict[str, int], expected: str) -> None:
    assert verdict(rates, sysctls) == expected


def kernel_event() -> SynFloodEvent:
    return SynFloodEvent(
        id="boot:1234",
        seq=1234,
        boot_id="boot",
        addr="0.0.0.0",
        port=443,
        proto="request_sock_TCP",
        lines=[
            "TCP: request_sock_TCP: Possible SYN flooding on port 0.0.0.0:443. Sending cookies."
        ],
    )


def test_kernel_line_starts_then_ongoing_then_ended_under_one_id() -> None:
    t = SynEpisodeTracker(host="web1", boot_id="boot", quiet_after_s=30, update_every_s=20)
    assert t.sample(T0, counters(), [LISTENER], COOKIES_ON) == []  # baseline only
    [start] = t.on_kernel_event(kernel_event(), T0)
    assert (start.episode, start.id, start.revision, start.host) == (
        "start",
        "boot:1234",
        0,
        "web1",
    )
    assert t.on_kernel_event(kernel_event(), T0 + 2) == []  # same port: already open

    sent = 0
    emitted: list[SynFloodEvent] = []
    for i in range(1, 7):  # 60 s of flood at 1000 cookies/s, 2/s coming back
        sent += 10_000
        emitted += t.sample(
            T0 + 10 * i,
            counters(SyncookiesSent=sent, SyncookiesRecv=20 * i),
            [LISTENER],
            COOKIES_ON,
        )
    assert [e.episode for e in emitted] == ["ongoing", "ongoing", "ongoing"]  # every 20 s
    assert [e.revision for e in emitted] == [1, 2, 3]
    assert {e.id for e in emitted} == {"boot:1234"}
    last = emitted[-1]
    assert last.context.counter_rates["SyncookiesSent"] == pytest.approx(1000.0)
    assert last.context.verdict == "attack"
    assert last.context.verdict_text == SPOOFED
    assert last.context.listener.comm == "<!channel>"
    assert last.context.listener.backlog == 511

    quiet: list[SynFloodEvent] = []
    for i in range(7, 12):  # counters flat: the flood stopped at T0+60
        quiet += t.sample(
            T0 + 10 * i, counters(SyncookiesSent=sent, SyncookiesRecv=120), [LISTENER], COOKIES_ON
        )
    [ended] = quiet
    assert ended.episode == "ended"
    assert ended.id == "boot:1234"
    assert ended.revision == 4
    assert ended.context.peak_rates["SyncookiesSent"] == pytest.approx(1000.0)
    assert ended.context.duration_s == pytest.approx(90.0)  # started T0, ended T0+90
    assert t.open_ports == []

    advice = advise(ended)
    assert "Rate-limit SYNs" in advice[0].title


def test_counters_alone_start_an_episode_on_the_busiest_listener() -> None:
    t = SynEpisodeTracker(host="web1", boot_id="b", update_every_s=1000)
    quiet = Listener(family="ipv6", addr="::", port=22, syn_recv=0)
    t.sample(T0, counters(ListenOverflows=5), [quiet, LISTENER], COOKIES_ON)
    [start] = t.sample(
        T0 + 10,
        counters(ListenOverflows=505, ListenDrops=505, SyncookiesSent=300, SyncookiesRecv=290),
        [quiet, LISTENER],
        COOKIES_ON,
    )
    assert start.episode == "start"
    assert start.port == 443
    assert start.id == "b:syn:443:1700000010"
    assert start.context.source == "counters"
    assert start.context.verdict_text == REAL_CLIENTS
    assert start.context.counter_rates["ListenOverflows"] == pytest.approx(50.0)


def test_kernel_line_names_the_port_of_a_counters_episode() -> None:
    t = SynEpisodeTracker(host="h", boot_id=None)
    t.sample(T0, counters(), [], COOKIES_OFF)
    [start] = t.sample(T0 + 10, counters(TCPReqQFullDrop=5000), [], COOKIES_OFF)
    assert (start.port, start.action) == (None, "drop")
    ev = kernel_event()
    ev.action = "drop"
    [update] = t.on_kernel_event(ev, T0 + 11)
    assert (update.id, update.revision, update.episode, update.port) == (
        start.id,
        1,
        "ongoing",
        443,
    )
    assert update.lines == ev.lines
    assert t.open_ports == [443]


def test_counter_reset_is_not_a_negative_rate() -> None:
    t = SynEpisodeTracker(host="h", boot_id=None)
    t.sample(T0, counters(SyncookiesSent=10**9), [], COOKIES_ON)
    assert t.sample(T0 + 10, counters(SyncookiesSent=3), [], COOKIES_ON) == []
    assert t.rates["SyncookiesSent"] == 0.0


def test_kernel_line_without_a_flood_in_the_counters_ends_after_quiet_period() -> None:
    t = SynEpisodeTracker(host="h", boot_id="b", quiet_after_s=30)
    [start] = t.on_kernel_event(kernel_event(), T0)
    assert start.context.verdict_text == INSUFFICIENT
    out: list[SynFloodEvent] = []
    for i in range(5):
        out += t.sample(T0 + 10 * i, counters(), [], COOKIES_ON)
    [ended] = out
    assert ended.episode == "ended"
    assert ended.context.verdict_text == INSUFFICIENT
