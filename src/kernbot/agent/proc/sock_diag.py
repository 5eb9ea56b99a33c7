"""Listen backlogs via NETLINK_SOCK_DIAG, the interface `ss` uses.

/proc/net/tcp does not show a listener's listen() backlog; inet_diag does (idiag_wqueue =
sk_max_ack_backlog for a LISTEN socket, idiag_rqueue = sk_ack_backlog). Netlink answers for the
namespace of the socket's creator, so callers run `listen_queues` inside the namespace they read.
"""

from __future__ import annotations

import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
TCP_LISTEN = 10

_NLMSGHDR = struct.Struct("=IHHII")
_REQ = struct.Struct("=BBBBI48x")  # inet_diag_req_v2 with a zeroed inet_diag_sockid
_MSG = struct.Struct("=BBBB48xIIIII")  # inet_diag_msg: ..., expires, rqueue, wqueue, uid, inode


def _request(family: int) -> bytes:
    body = _REQ.pack(family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_LISTEN)
    return (
        _NLMSGHDR.pack(
            _NLMSGHDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0
        )
        + body
    )


def parse_replies(data: bytes) -> tuple[dict[int, tuple[int, int]], bool]:
    """Netlink reply bytes -> ({inode: (accept_queue, backlog)}, done)."""
    out: dict[int, tuple[int, int]] = {}
    off = 0
    while off + _NLMSGHDR.size <= len(data):
        length, mtype, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, off)
        if length < _NLMSGHDR.size:
            return out, True
        if mtype == NLMSG_DONE:
            return out, True
        if mtype == NLMSG_ERROR:
            (errno_neg,) = struct.unpack_from("=i", data, off + _NLMSGHDR.size)
            raise OSError(-errno_neg, "sock_diag request failed")
        if mtype == SOCK_DIAG_BY_FAMILY and length >= _NLMSGHDR.size + _MSG.size:
            _fam, state, _t, _r, _exp, rq, wq, _uid, inode = _MSG.unpack_from(
                data, off + _NLMSGHDR.size
            )
            if state == TCP_LISTEN:
                out[inode] = (rq, wq)
        off += (length + 3) & ~3
    return out, False


def listen_queues() -> dict[int, tuple[int, int]]:
    """inode -> (accept queue, listen backlog) for every TCP listener of this thread's netns."""
    out: dict[int, tuple[int, int]] = {}
    for family in (socket.AF_INET, socket.AF_INET6):
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as sk:
            sk.settimeout(2.0)
            sk.send(_request(family))
            done = False
            while not done:
                part, done = parse_replies(sk.recv(65536))
                out.update(part)
    return out
