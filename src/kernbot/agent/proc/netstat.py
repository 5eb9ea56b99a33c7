"""/proc/net/netstat: the TcpExt counters that show a SYN flood after its one log line.

The file is pairs of lines, a header (`TcpExt: SyncookiesSent ...`) then values
(`TcpExt: 0 ...`); the set of counters differs between kernels, so names are read from the header.
"""

from __future__ import annotations


def parse_netstat(text: str) -> dict[str, dict[str, int]]:
    """{"TcpExt": {"SyncookiesSent": 0, ...}, "IpExt": {...}, ...}."""
    out: dict[str, dict[str, int]] = {}
    lines = text.splitlines()
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        prefix, _, names = header.partition(":")
        vprefix, _, nums = values.partition(":")
        if prefix != vprefix or not prefix:
            continue
        section: dict[str, int] = {}
        for name, raw in zip(names.split(), nums.split(), strict=False):
            try:
                section[name] = int(raw)
            except ValueError:
                continue
        out[prefix] = section
    return out
