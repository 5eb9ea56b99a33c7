"""util-linux `dmesg` prefixes (sys-utils/dmesg.c) and captures that reuse them.

Handles `[   30.745678] `, `-d` (`[ 1.2 < 0.000123>] `), `-T` in any locale, `-e`
(`[Nov24 21:42] ` then `[  +0.000123] `), `-r` (`<4>`), `-x` (`kern  :warn  : `), caller ids
(`[T19113] `, `[    C1] `, also glued on as the console prints them: `[  580.34][T19113] `),
`journalctl -o short-monotonic` (`[  123.456789] host kernel: `) and remote/netconsole captures
that put their own date and address in front (`2016-12-19 16:14:24 192.168.186.128:6666 [ts] msg`).

The message keeps its own leading spaces (` dump_stack+0x63/0x85`): they are the kernel's.
"""

from __future__ import annotations

import re

from kernbot.core.formats.head import LEVEL_NAMES, Head
from kernbot.core.formats.timefmt import iso_at, make_wall, month_number, seconds_to_usec

_TS = re.compile(r"\[ {0,12}(\d{1,12})\.(\d{1,9})(?: {0,12}< {0,12}[\d.]{1,24}>)?\] ?")
_DELTA = re.compile(r"\[ {0,12}(?:\+|< {0,12})(\d{1,12})\.(\d{1,9})>?\] ?")
CALLER = re.compile(r"\[ {0,8}([TC]\d{1,10})\] ?")
"""A CONFIG_PRINTK_CALLER id after the stamp: `[T123] `, `[    C1] `."""
_DATE_T = re.compile(
    r"\[([^\]\s]{1,16}) {1,4}([^\]\s]{1,16}) {1,4}(\d{1,2}) {1,4}(\d{1,2}):(\d{2}):(\d{2}) {1,4}"
    r"(\d{4})(?: {0,12}<[^>\]]{0,30}>)?\] ?"
)
_RELTIME = re.compile(r"\[([^\]\s\d]{1,12}) ?(\d{1,2}) (\d{1,2}):(\d{2})\] ?")
_MONO_HOST = re.compile(r"([^\s:\[\]]{1,255}) kernel: ")
_RAW_PRIO = re.compile(r"<(\d{1,4})>")
_FAC_LEVEL = re.compile(r"([a-z0-9]{2,8}) {0,6}:([a-z]{3,7}) {0,6}: ")
_NETCONSOLE = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) ([^\s\[\]]{1,255}) ")


def parse_bracket(
    line: str, year: int | None, pos: int = 0, level: int | None = None, outer: str = ""
) -> Head | None:
    """A line starting (at `pos`) with one of dmesg's bracketed timestamps.

    `level` and `outer` (the fmt name) come from a prefix before the bracket (`-r`, `-x`).
    """
    second = line[pos + 1 : pos + 2]
    mono = None
    wall = None
    if second in " <" or second.isdigit():
        match = _TS.match(line, pos)
        if match is not None:
            secs, frac = match.group(1, 2)
            mono = (
                int(secs) * 1_000_000 + int(frac) if len(frac) == 6 else seconds_to_usec(secs, frac)
            )
            fmt = "dmesg"
        else:
            match = _DELTA.match(line, pos)
            fmt = "dmesg-reltime"
    else:
        match = _DATE_T.match(line, pos)
        if match is not None:
            fmt = "dmesg-T"
            wall = make_wall(int(match[7]), month_number(match[2]), match[3], match.group(4, 5, 6))
        else:
            match = _RELTIME.match(line, pos)
            fmt = "dmesg-reltime"
            if match is not None:
                wall = make_wall(year, month_number(match[1]), match[2], (*match.group(3, 4), 0))
    if match is None:
        return None
    end = match.end()
    caller = None
    host = None
    if line.startswith("[", end):
        found = CALLER.match(line, end)
        if found is not None:
            caller = found[1]
            end = found.end()
    if mono is not None and line.find(" kernel: ", end, end + 260) >= 0:
        found = _MONO_HOST.match(line, end)
        if found is not None:
            host = found[1]
            end = found.end()
            fmt = "journal-short-monotonic"
    return Head(line[end:], outer or fmt, end, level, mono, wall, host, caller)


def parse_raw_prio(line: str, year: int | None) -> Head | None:
    """`dmesg -r`: `<4>[  12.345678] msg` (or `<4>msg` with `-t`)."""
    match = _RAW_PRIO.match(line)
    if match is None:
        return None
    end = match.end()
    level = int(match[1]) & 7
    head = parse_bracket(line, year, end, level, "dmesg-r") if line.startswith("[", end) else None
    return head or Head(line[end:], "dmesg-r", end, level)


def parse_fac_level(line: str, year: int | None) -> Head | None:
    """`dmesg -x`: `kern  :warn  : [ 12.345678] msg`."""
    match = _FAC_LEVEL.match(line)
    if match is None:
        return None
    level = LEVEL_NAMES.get(match[2])
    if level is None:
        return None
    end = match.end()
    head = None
    if line.startswith("[", end):
        head = parse_bracket(line, year, end, level, "dmesg-x")
    elif line[end : end + 1].isdigit():  # `-x --time-format iso`
        iso = iso_at(line, end)
        if iso is not None and iso[2] == ",":
            return Head(line[iso[1] :], "dmesg-x", iso[1], level, None, iso[0])
    return head or Head(line[end:], "dmesg-x", end, level)


def parse_netconsole(line: str, year: int | None) -> Head | None:
    """A remote capture's `YYYY-MM-DD HH:MM:SS source ` prefix, then an optional `[ts] `."""
    match = _NETCONSOLE.match(line)
    if match is None:
        return None
    wall = make_wall(int(match[1]), int(match[2]), match[3], match.group(4, 5, 6))
    source = match[7]
    end = match.end()
    head = parse_bracket(line, year, end) if line.startswith("[", end) else None
    if head is None:
        return Head(line[end:], "netconsole", end, None, None, wall, source)
    return head._replace(fmt="netconsole", wall=wall, host=source)
