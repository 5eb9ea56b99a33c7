"""Raw /dev/kmsg records (Documentation/ABI/testing/dev-kmsg).

`PRI,SEQ,TS_USEC,FLAGS[,caller=T123];MESSAGE` then optional ` KEY=value` dictionary lines. The
kernel escapes `\\`, control bytes and non-ASCII bytes as `\\xNN`, so embedded newlines arrive as
`\\x0a` and UTF-8 process names as runs of escapes; runs are decoded as UTF-8 together.
"""

from __future__ import annotations

import re

from kernbot.core.formats.head import Head

_HEADER = re.compile(r"(\d{1,9}),(\d{1,20}),(\d{1,20}),([^,;]{0,8})([^;]{0,200});")
_ESCAPE_RUN = re.compile(r"(?:\\x[0-9a-fA-F]{2})+")
DICT_LINE = re.compile(r" [A-Z_][A-Z0-9_]{0,63}=")
"""A dictionary continuation line such as ` SUBSYSTEM=acpi` (metadata, not message text)."""


def _decode_run(match: re.Match[str]) -> str:
    return bytes.fromhex(match.group().replace("\\x", "")).decode("utf-8", "replace")


def unescape(message: str) -> str:
    """Undo the kernel's `\\xNN` escaping."""
    if "\\x" not in message:
        return message
    return _ESCAPE_RUN.sub(_decode_run, message)


def parse_kmsg_line(line: str) -> tuple[Head, str] | None:
    """The header and message of one record line, plus its flags (`-`, `c` or `+`)."""
    match = _HEADER.match(line)
    if match is None:
        return None
    pri, seq, ts, flags, more = match.groups()
    caller = None
    if more:
        at = more.find("caller=")
        if at >= 0:
            caller = more[at + 7 :].split(",", 1)[0] or None
    head = Head(
        text=unescape(line[match.end() :]),
        fmt="kmsg",
        level=int(pri) & 7,
        mono_usec=int(ts),
        caller=caller,
        seq=int(seq),
    )
    return head, flags
