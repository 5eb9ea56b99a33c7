"""JSON transports: `journalctl -o json` entries and util-linux `dmesg --json` records.

journald values are strings, arrays of byte values (for non-UTF-8 or binary data), arrays of
either (a field repeated in one entry), or null. `MESSAGE` carries real newlines. `dmesg --json`
prints `{"pri":6,"time":12.345678,"msg":"…"}` per record (`"fac":"kern","pri":"info"` under `-x`),
pretty-printed one member per line; `json_member` reads those lines one at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from kernbot.core.formats.head import LEVEL_NAMES, Head

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MEMBER = re.compile(r'\s{0,64}"(pri|fac|time|caller|msg)":\s{0,16}(.*?),?\s{0,4}')
_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8(text: str) -> str:
    """`text` without lone surrogates (U+FFFD instead), as invalid bytes are read elsewhere.

    JSON may spell one as `\\ud800`; `json.loads` keeps it, and no UTF-8 writer (stdout, the
    event JSON, the wire) accepts it afterwards.
    """
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


def field(entry: Mapping[str, object], key: str) -> str | None:
    """A journald field as text, whatever JSON shape it came in."""
    value = entry.get(key)
    if isinstance(value, str):
        return _utf8(value)
    if isinstance(value, list):
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            if all(0 <= v <= 255 for v in value):
                return bytes(value).decode("utf-8", "replace")
            return None
        for item in value:  # a repeated field: the first usable value
            if isinstance(item, str):
                return _utf8(item)
            if isinstance(item, list):
                return field({key: item}, key)
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _int_field(entry: Mapping[str, object], key: str) -> int | None:
    text = field(entry, key)
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 20:
        return None
    return int(text)


def is_kernel_entry(entry: Mapping[str, object]) -> bool:
    """journald marks kmsg entries `_TRANSPORT=kernel`; trimmed exports may only keep the tag."""
    transport = field(entry, "_TRANSPORT")
    if transport is not None:
        return transport == "kernel"
    return field(entry, "SYSLOG_IDENTIFIER") == "kernel"


def journal_head(entry: Mapping[str, object]) -> Head:
    """The metadata of a journal entry; fmt `journal-json`, or `journal-other` for non-kernel."""
    priority = _int_field(entry, "PRIORITY")
    realtime = _int_field(entry, "__REALTIME_TIMESTAMP")
    wall = None
    if realtime is not None:
        try:
            wall = _EPOCH + timedelta(microseconds=realtime)
        except OverflowError:
            wall = None
    return Head(
        text=field(entry, "MESSAGE") or "",
        fmt="journal-json" if is_kernel_entry(entry) else "journal-other",
        level=priority & 7 if priority is not None else None,
        mono_usec=_int_field(entry, "_SOURCE_MONOTONIC_TIMESTAMP"),
        wall=wall,
        host=field(entry, "_HOSTNAME"),
        boot_id=field(entry, "_BOOT_ID"),
        cursor=field(entry, "__CURSOR"),
    )


def _level(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value & 7
    if isinstance(value, str):
        return LEVEL_NAMES.get(value)
    return None


def _usec(value: object) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e12:
        return round(value * 1_000_000)
    return None


def dmesg_json_head(record: Mapping[str, object]) -> Head | None:
    """One `dmesg --json` record object, or None when it is not one."""
    msg = record.get("msg")
    if not isinstance(msg, str):
        return None
    caller = record.get("caller")
    return Head(
        text=_utf8(msg),
        fmt="dmesg-json",
        level=_level(record.get("pri")),
        mono_usec=_usec(record.get("time")),
        caller=_utf8(caller.strip()) if isinstance(caller, str) else None,
    )


def json_member(line: str) -> tuple[str, object] | None:
    """`   "pri": 5,` from pretty-printed `dmesg --json` as ("pri", 5); None if not a member."""
    match = _MEMBER.fullmatch(line)
    if match is None:
        return None
    try:
        value: object = json.loads(match[2])
    except ValueError:
        return None
    return match[1], value
