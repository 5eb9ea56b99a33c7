"""/proc/meminfo: how much memory the host had left when the OOM killer ran.

Values are kept in kB as the kernel prints them; the few unit-less lines (HugePages_Total...) are
kept as plain counts.
"""

from __future__ import annotations


def parse_meminfo(text: str) -> dict[str, int]:
    """`MemTotal:  16303940 kB` lines -> {"MemTotal": 16303940}; malformed lines are skipped."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        fields = rest.split()
        if not fields:
            continue
        try:
            out[key.strip()] = int(fields[0])
        except ValueError:
            continue
    return out
