"""Listening TCP sockets from /proc/net/tcp and tcp6: who listens, how full its queues are.

On a LISTEN row the kernel prints the accept queue length (sk_ack_backlog) as `rx_queue` — what
`ss` calls Recv-Q. The listen() backlog (sk_max_ack_backlog, ss's Send-Q) is NOT in this file: its
`tx_queue` is write_seq - snd_una, always 0 for a listener, so the backlog comes from sock_diag
(see sock_diag.py) when the caller can ask netlink. Half-open connections (request socks) appear
as state 03 (SYN_RECV) rows; counting them per port shows which listener a SYN flood is hitting.
Owning pids come from /proc/PID/fd links `socket:[INODE]`.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from kernbot.agent.proc.processes import pids

TCP_LISTEN = 0x0A
TCP_SYN_RECV = 0x03


@dataclass(frozen=True, slots=True)
class TcpRow:
    family: str
    addr: str
    port: int
    state: int
    rx_queue: int
    tx_queue: int
    inode: int


def _addr(hexaddr: str) -> str:
    """The kernel prints each 32-bit word of the address with %08X in host byte order."""
    words = [int(hexaddr[i : i + 8], 16) for i in range(0, len(hexaddr), 8)]
    raw = b"".join(struct.pack("=I", w) for w in words)
    ip = ipaddress.ip_address(raw)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)


def parse_tcp_table(text: str, family: str) -> list[TcpRow]:
    rows: list[TcpRow] = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 10:
            continue
        try:
            laddr, _, lport = f[1].partition(":")
            tx, _, rx = f[4].partition(":")
            rows.append(
                TcpRow(
                    family=family,
                    addr=_addr(laddr),
                    port=int(lport, 16),
                    state=int(f[3], 16),
                    tx_queue=int(tx, 16),
                    rx_queue=int(rx, 16),
                    inode=int(f[9]),
                )
            )
        except ValueError:
            continue
    return rows


def _is_any(addr: str) -> bool:
    return addr in ("0.0.0.0", "::")


def _affinity(listener: TcpRow, req: TcpRow) -> int:
    """0 same address, 1 same-family wildcard, 2 other-family wildcard, 3 no match."""
    if listener.family == req.family and listener.addr == req.addr:
        return 0
    if _is_any(listener.addr):
        return 1 if listener.family == req.family else 2
    return 3


def syn_recv_per_listener(listeners: list[TcpRow], rows: list[TcpRow]) -> dict[int, int]:
    """inode -> SYN_RECV count. A request is charged to the listener on its port with the same
    address, else a same-family wildcard, else the other family's wildcard (dual-stack v6)."""
    counts = {ls.inode: 0 for ls in listeners}
    for row in rows:
        if row.state != TCP_SYN_RECV:
            continue
        best: TcpRow | None = None
        best_rank = 3
        for ls in listeners:
            if ls.port == row.port and (rank := _affinity(ls, row)) < best_rank:
                best, best_rank = ls, rank
        if best is not None:
            counts[best.inode] += 1
    return counts


def socket_owners(root: Path, inodes: set[int]) -> dict[int, int]:
    """inode -> pid of the first process holding a fd on that socket (stops once all are found)."""
    wanted = {f"socket:[{i}]": i for i in inodes}
    found: dict[int, int] = {}
    for pid in pids(root):
        if len(found) == len(wanted):
            break
        fd_dir = root / str(pid) / "fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(fd_dir / name)
            except OSError:
                continue
            inode = wanted.get(target)
            if inode is not None and inode not in found:
                found[inode] = pid
    return found
