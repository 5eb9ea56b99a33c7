"""syslog files and `journalctl` short output: `<date> host tag: msg`.

Covers rsyslog's traditional `Mmm dd HH:MM:SS host kernel: [ts] msg` (with or without the kernel's
own `[ts]`), RFC3339 dates (`2024-05-01T12:34:56.789012+00:00 host kernel: msg`), journalctl
`short`, `short-precise` and `short-iso`, `dmesg --time-format iso` (whose comma decimal mark
tells it apart), and syslogd's wall broadcast (`Message from syslogd@host at …` then
` kernel:[ts] msg`). rsyslog writes embedded newlines as `#012`: they become `\\n` here so the
reader splits them. Lines from other programs come back as fmt `syslog-other`; detectors skip them.
"""

from __future__ import annotations

import re
from datetime import datetime

from kernbot.core.formats.dmesg import parse_bracket
from kernbot.core.formats.head import Head
from kernbot.core.formats.timefmt import EN_MONTHS, frac_to_usec, iso_at, make_wall

_TRADITIONAL = re.compile(
    r"([A-Z][a-z]{2}) ([ \d]?\d) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? ([^\s\[\]]{1,255}) "
)
_HOST = re.compile(r"([^\s:\[\]]{1,255}) ")
_TAG = re.compile(r"([^\s:\[\]]{1,64})(?:\[(\d{1,10})\])?: ?")
_WALL_HEADER = re.compile(
    r"Message from syslogd@(\S{1,255}) at ([A-Z][a-z]{2}) ([ \d]?\d) (\d{2}):(\d{2}):(\d{2})"
)
_WALL_KERNEL = re.compile(r" {0,8}kernel: ?")


def unescape_octal(text: str) -> str:
    """rsyslog's `#012` (newline) and `#011` (tab) back to the characters."""
    if "#01" not in text:
        return text
    return text.replace("#012", "\n").replace("#011", "\t")


_FAC_PRIO = re.compile(
    r"[a-z]{2,8}[0-7]?\.(?:emerg|alert|crit|err|warn|warning|notice|info|debug) "
)
"""busybox syslogd's `facility.priority` between host and tag (sysklogd/syslogd.c)."""


def _after_tag(line: str, pos: int, wall: datetime | None, host: str | None, fmt: str) -> Head:
    """`tag[pid]: msg` at `pos`; the kernel's `[ts] ` is kept as mono time when present."""
    tag = _TAG.match(line, pos)
    if tag is None:
        return Head(unescape_octal(line[pos:]), "syslog-other", pos, None, None, wall, host)
    end = tag.end()
    if tag[1] != "kernel":
        return Head(unescape_octal(line[end:]), "syslog-other", end, None, None, wall, host)
    if line.startswith("[", end):
        inner = parse_bracket(line, None, end)
        if inner is not None and inner.fmt == "dmesg":
            return inner._replace(text=unescape_octal(inner.text), fmt=fmt, wall=wall, host=host)
    return Head(unescape_octal(line[end:]), fmt, end, None, None, wall, host)


def parse_traditional(line: str, year: int | None) -> Head | None:
    """`Nov 24 21:42:19[.123456] host tag: msg` (rsyslog, journalctl short/short-precise)."""
    match = _TRADITIONAL.match(line)
    if match is None:
        return None
    month = EN_MONTHS.get(match[1].lower())
    wall = make_wall(year, month, match[2], match.group(3, 4, 5), usec=frac_to_usec(match[6]))
    if match[7] == "kernel:":  # busybox `syslogd -S` (and routers): no host name at all
        return _after_tag(line, match.start(7), wall, None, "syslog")
    pos = match.end()
    fac = _FAC_PRIO.match(line, pos)  # busybox syslogd: `host kern.warn kernel: msg`
    if fac is not None:
        pos = fac.end()
    return _after_tag(line, pos, wall, match[7], "syslog")


def parse_iso(line: str) -> Head | None:
    """An ISO 8601 date first: `dmesg --time-format iso`, RFC3339 syslog or journal short-iso."""
    found = iso_at(line)
    if found is None:
        return None
    wall, end, mark = found
    if mark != ",":
        host = _HOST.match(line, end)
        if host is not None and _TAG.match(line, host.end()) is not None:
            return _after_tag(line, host.end(), wall, host[1], "syslog-iso")
    return Head(line[end:], "dmesg-iso", end, None, None, wall)


def parse_wall_header(line: str, year: int | None) -> tuple[Head, str, datetime | None] | None:
    """syslogd's `Message from syslogd@host at Aug  1 14:32:18 ...` (not kernel text itself)."""
    match = _WALL_HEADER.match(line)
    if match is None:
        return None
    wall = make_wall(year, EN_MONTHS.get(match[2].lower()), match[3], match.group(4, 5, 6))
    host = match[1]
    return Head(line, "syslog-other", 0, None, None, wall, host), host, wall


def parse_wall_kernel(line: str, host: str | None, wall: datetime | None) -> Head | None:
    """The broadcast's ` kernel:[340648.118967] Kernel panic - …` line."""
    match = _WALL_KERNEL.match(line)
    if match is None:
        return None
    end = match.end()
    if line.startswith("[", end):
        inner = parse_bracket(line, None, end)
        if inner is not None and inner.fmt == "dmesg":
            return inner._replace(fmt="syslog-wall", wall=wall, host=host)
    return Head(line[end:], "syslog-wall", end, None, None, wall, host)
