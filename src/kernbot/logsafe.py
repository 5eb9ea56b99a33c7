"""Text from a host (comm, host names, log lines, URLs) made safe for our own log lines.

A log line is one line: a host that sends a name with a newline or an ANSI escape must not be
able to forge a second log entry or repaint an operator's terminal, and a megabyte of name must
not become a megabyte of log. Control characters (C0, DEL, C1, and the Unicode line/paragraph
separators) are shown as `\\xNN`/`\\uNNNN` escapes and the result is cut to `limit` characters.
"""

from __future__ import annotations

import re

LIMIT = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch == "\\":
        return "\\\\"
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def logsafe(value: object, limit: int = LIMIT) -> str:
    """`value` as one bounded, escaped line for a log message."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit * 4:
        text = text[: limit * 4]
    text = _UNSAFE.sub(_escape, text)
    if len(text) > limit:
        return text[: limit - 1] + "…"
    return text
