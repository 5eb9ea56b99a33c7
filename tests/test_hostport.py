"""The one HOST:PORT parser behind every listen setting, and the error root it shares."""

from __future__ import annotations

import pytest

from kernbot.errors import KernbotError
from kernbot.hostport import HostPortError, parse_host_port, url_host


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        ("[::1]:9101", ("::1", 9101)),
        (":9100", ("0.0.0.0", 9100)),
        ("node-1.example:0", ("node-1.example", 0)),
        (" [2001:db8::7]:65535 ", ("2001:db8::7", 65535)),
    ],
)
def test_listen_forms(text: str, want: tuple[str, int]) -> None:
    assert parse_host_port(text) == want


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("9100", "expected HOST:PORT"),
        ("host:http", "numeric port"),
        ("host:70000", "out of range"),
        ("::1:9100", "needs brackets"),
        ("[::1:9100", "[IPV6]:PORT"),
    ],
)
def test_bad_listen_says_what_was_given(text: str, why: str) -> None:
    with pytest.raises(HostPortError) as err:
        parse_host_port(text)
    assert why in str(err.value) and repr(text) in str(err.value)
    assert isinstance(err.value, KernbotError) and isinstance(err.value, ValueError)


def test_url_host_brackets_ipv6_only() -> None:
    assert (url_host("::1"), url_host("10.0.0.1"), url_host("node")) == (
        "[::1]",
        "10.0.0.1",
        "node",
    )
