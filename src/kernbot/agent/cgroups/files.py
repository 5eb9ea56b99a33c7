"""Parsing the few memory cgroup files a decision needs, and reading them cheaply.

The sampler reads hundreds of small files every few seconds, so reads go through `os.open`/
`os.read` (no Path objects, no text decoding layers). A cgroup removed between listing and
reading is normal: every reader returns None for a missing file.
"""

from __future__ import annotations

import os

from kernbot.agent.proc.psi import parse_psi

UNLIMITED = 1 << 62
"""v1 prints PAGE_COUNTER_MAX * PAGE_SIZE (9223372036854771712) for "no limit"; anything this
large is no limit."""


def read_small(path: str, size: int = 4096) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_int(path: str) -> int | None:
    """An integer file (`memory.current`); `max` (v2 no limit) reads as None."""
    raw = read_small(path, 64)
    if raw is None:
        return None
    raw = raw.strip()
    if raw == b"max":
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return None if value >= UNLIMITED else value


def parse_flat_keyed(raw: bytes) -> dict[str, int]:
    """`key value` lines (memory.stat, memory.events, memory.oom_control) -> {key: value}."""
    out: dict[str, int] = {}
    for line in raw.split(b"\n"):
        key, _, value = line.partition(b" ")
        try:
            out[key.decode("ascii")] = int(value)
        except (ValueError, UnicodeDecodeError):
            continue
    return out


def parse_pressure(raw: bytes) -> tuple[float | None, float | None]:
    """(some avg10, full avg10) from a PSI file (`some avg10=1.50 avg60=… total=…`)."""
    psi = parse_psi(raw.decode("ascii", "replace"))
    some, full = psi.get("some", {}).get("avg10"), psi.get("full", {}).get("avg10")
    return (float(some) if some is not None else None, float(full) if full is not None else None)
