"""SYN flood recognition: every corpus capture, with what it must yield written beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernbot.core.detector import detect
from kernbot.core.events import SynFloodEvent
from kernbot.core.formats.reader import read_lines
from kernbot.core.record import Record
from kernbot.core.syn.flood import parse_syn_flood

CORPUS = Path(__file__).parent / "fixtures" / "corpus"

# file -> one (family, addr, port, action, proto) per event, in order
EXPECTED: dict[str, list[tuple[str, str | None, int, str, str | None]]] = {
    "syn-2.6.20-ubuntu7.04-lowercase-port-only-syslog.txt": [("ipv4", None, 4671, "cookies", None)]
    * 11,
    "syn-3.5to3.16-or-el7-TCP-TCP-port-only-syslog.txt": [("ipv4", None, 80, "cookies", "TCP")],
    "syn-3.5to3.16-or-el7-TCP-TCP-port-only-dmesg.txt": [("ipv4", None, 11211, "cookies", "TCP")],
    "syn-3.17to6.1-request_sock_TCP-port-only-dmesg-2015.txt": [
        ("ipv4", None, 8080, "cookies", "request_sock_TCP")
    ],
    "syn-3.17to6.1-request_sock_TCP-port-only-dmesgT-2022.txt": [
        ("ipv4", None, 80, "cookies", "request_sock_TCP")
    ],
    "syn-3.17to6.1-request_sock_TCPv6-dropping-dmesgT-ru-locale.txt": [
        ("ipv6", None, 34391, "drop", "request_sock_TCPv6")
    ]
    * 3,
    "syn-6.2plus-addr-ipv4-printk-caller.txt": [
        ("ipv4", "127.0.0.1", 23456, "cookies", "request_sock_TCP")
    ]
    * 10,
    # line 2 is MPTCP's v4 subflow on a dual-stack [::] listener: the socket is IPv6
    "syn-6.2plus-addr-ipv6-any-and-mptcp.txt": [
        ("ipv6", "::", 20002, "cookies", "request_sock_TCPv6"),
        ("ipv6", "::", 20002, "cookies", "request_sock_subflow_v4"),
    ],
    # `port\n0.0.0.0:7070.` split by the poster's mailer: joined by the detector
    "syn-6.2plus-addr-ipv4-any-email-wrapped.txt": [
        ("ipv4", "0.0.0.0", 7070, "cookies", "request_sock_TCP")
    ],
}


def test_every_syn_corpus_file_has_an_expectation() -> None:
    assert sorted(p.name for p in CORPUS.glob("syn-*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name: str) -> None:
    text = (CORPUS / name).read_text()
    events = detect(read_lines(text.splitlines()))
    syn = [e for e in events if isinstance(e, SynFloodEvent)]
    assert len(syn) == len(events)
    got = [(e.family, e.addr, e.port, e.action, e.proto) for e in syn]
    assert got == EXPECTED[name]
    assert len({e.id for e in syn}) == len(syn), "repeated lines must stay separate events"
    for e in syn:
        assert e.advice, "every event carries advice"
        assert e.lines and "SYN flooding" in e.lines[0]


def test_times_and_seq_come_from_the_record() -> None:
    text = (CORPUS / "syn-3.17to6.1-request_sock_TCP-port-only-dmesgT-2022.txt").read_text()
    (ev,) = detect(read_lines(text.splitlines()))
    assert ev.time is not None and ev.time.startswith("2022-01-29T00:44:36")
    raw = (
        "6,1234,601749973,-;TCP: request_sock_TCP: Possible SYN flooding on port 0.0.0.0:443."
        " Sending cookies.\n"
    )
    (kmsg,) = detect(read_lines([raw]), host="h1", boot_id="b-1")
    assert (kmsg.seq, kmsg.mono_usec, kmsg.id, kmsg.host) == (1234, 601749973, "b-1:1234", "h1")


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        (
            "TCPv6: Possible SYN flooding on port 22. Sending cookies.",
            ("ipv6", None, 22, "cookies", "TCPv6"),
        ),
        (
            "TCP: Possible SYN flooding on port 80. Dropping request.  Check SNMP counters.",
            ("ipv4", None, 80, "drop", "TCP"),
        ),
        (
            "TCP: TCPv6: Possible SYN flooding on port 443. Sending cookies.  Check SNMP counters.",
            ("ipv6", None, 443, "cookies", "TCPv6"),
        ),
        (
            "TCP: request_sock_TCPv6: Possible SYN flooding on port [2001:db8::5]:8443. "
            "Dropping request.",
            ("ipv6", "2001:db8::5", 8443, "drop", "request_sock_TCPv6"),
        ),
        (
            "TCP: request_sock_subflow_v6: Possible SYN flooding on port [::ffff:192.0.2.1]:80. "
            "Sending cookies.",
            ("ipv6", "::ffff:192.0.2.1", 80, "cookies", "request_sock_subflow_v6"),
        ),
        (
            "TCP: request_sock_TCP: Possible SYN flooding on port 198.51.100.7:0. Sending cookies.",
            ("ipv4", "198.51.100.7", 0, "cookies", "request_sock_TCP"),
        ),
    ],
)
def test_forms_by_kernel_era(text: str, fields: tuple[object, ...]) -> None:
    ev = parse_syn_flood(Record(text=text))
    assert ev is not None
    assert (ev.family, ev.addr, ev.port, ev.action, ev.proto) == fields


@pytest.mark.parametrize(
    "text",
    [
        "TCP: request_sock_TCP: Possible SYN flooding on port 80.",  # synthetic: no action word
        "TCP: request_sock_TCP: Possible SYN flooding on port 99999. Sending cookies.",
        "SYN flooding detected by the firewall on port 80",
        "nf_conntrack: table full, dropping packet",
        "",
        "possible SYN flooding on port \x1b[2J. Sending cookies.",
    ],
)
def test_not_a_syn_flood(text: str) -> None:
    assert parse_syn_flood(Record(text=text)) is None


def test_wrapped_head_without_its_tail_is_dropped() -> None:
    lines = [
        "[1.0] TCP: request_sock_TCP: Possible SYN flooding on port",
        "[2.0] something else entirely",
        "[3.0] TCP: request_sock_TCP: Possible SYN flooding on port 9. Sending cookies.",
    ]
    events = detect(read_lines(lines))
    assert [(e.kind, getattr(e, "port", None)) for e in events] == [("syn_flood", 9)]


def test_ids_are_stable_across_rescans_and_differ_per_host() -> None:
    rec = Record(text="TCP: TCP: Possible SYN flooding on port 80. Sending cookies.", mono_usec=5)
    a = parse_syn_flood(rec, host="a")
    again = parse_syn_flood(rec, host="a")
    b = parse_syn_flood(rec, host="b")
    assert a is not None and again is not None and b is not None
    assert a.id == again.id != b.id
