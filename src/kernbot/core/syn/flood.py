"""Recognise the kernel's "Possible SYN flooding" message in every form it has been printed.

The kernel prints this once per listening socket (rate-limited), from `tcp_syn_flood_action()`
in net/ipv4/tcp_input.c. The wording changed over the years (see tests/fixtures/corpus/
PROVENANCE.md, section 2): lower case without a prefix on 2.6, a `TCP: ` pr_fmt added in 3.5,
the request_sock slab name as the proto since 3.17, and the listening address since 6.2.
One regular expression covers them all; the detector only calls it for lines that contain
`SYN flooding`, so it is never on the hot path of a big log.
"""

from __future__ import annotations

import re
from typing import Literal

from kernbot.core.event_id import stable_event_id
from kernbot.core.events import SynFloodEvent
from kernbot.core.record import Record

MARKER = "SYN flooding"
"""Substring every form contains: the cheap first test before the regular expression."""

WRAP_TAIL = "SYN flooding on port"
"""A line ending here was wrapped by a mailer or a narrow terminal; the rest is on the next line."""

_SYN_RE = re.compile(
    r"(?:(?P<proto>[A-Za-z][A-Za-z0-9_]*): )?"
    r"[Pp]ossible SYN flooding on port "
    r"(?:\[(?P<addr6>[0-9A-Fa-f:.]+)\]:(?P<port6>\d+)"
    r"|(?P<addr4>\d{1,3}(?:\.\d{1,3}){3}):(?P<port4>\d+)"
    r"|(?P<port>\d+))"
    r"\.\s+(?P<action>Sending cookies|Dropping request)"
)


def _family(proto: str | None, addr6: str | None, addr4: str | None) -> Literal["ipv4", "ipv6"]:
    """The listening socket's family: the printed address decides, else the proto name.

    A dual-stack `[::]` listener that takes IPv4 SYNs prints `request_sock_TCP … [::]:port`;
    its socket (and its row in /proc/net/tcp6) is IPv6, which is what the agent looks up.
    """
    if addr6 is not None:
        return "ipv6"
    if addr4 is not None:
        return "ipv4"
    if proto is not None and proto.lower().endswith("v6"):
        return "ipv6"
    return "ipv4"


def parse_syn_flood(
    rec: Record, *, host: str | None = None, boot_id: str | None = None
) -> SynFloodEvent | None:
    """The SYN flood event this record announces, or None when it is something else."""
    text = rec.text
    if MARKER not in text:
        return None
    m = _SYN_RE.search(text)
    if m is None:
        return None
    addr6, addr4 = m.group("addr6"), m.group("addr4")
    port_text = m.group("port6") or m.group("port4") or m.group("port")
    if len(port_text) > 5:  # not a port (and `int` refuses 4,300 digits and more)
        return None
    port = int(port_text)
    if port > 65535:
        return None
    proto = m.group("proto")
    host = rec.host or host
    boot_id = rec.boot_id or boot_id
    return SynFloodEvent(
        id=stable_event_id(rec, host, boot_id),
        time=rec.wall.isoformat() if rec.wall is not None else None,
        mono_usec=rec.mono_usec,
        host=host,
        boot_id=boot_id,
        seq=rec.seq,
        lines=[text],
        family=_family(proto, addr6, addr4),
        addr=addr6 if addr6 is not None else addr4,
        port=port,
        action="cookies" if m.group("action") == "Sending cookies" else "drop",
        proto=proto,
    )


def is_wrapped_head(text: str) -> bool:
    """True for the first half of a SYN line split after `port` (see the email-wrapped sample)."""
    return text.rstrip().endswith(WRAP_TAIL)
