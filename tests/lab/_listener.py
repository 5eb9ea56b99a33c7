"""A TCP listener that never accepts, with a tiny backlog: the victim of the lab's SYN flood.

`python _listener.py --family ipv4 --addr 192.0.2.2 [--port P] [--backlog 1]`; prints
`ready PORT` once listening, then sleeps until killed. Run inside the listener's namespace.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", choices=["ipv4", "ipv6"], required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--backlog", type=int, default=1)
    args = ap.parse_args()
    family = socket.AF_INET if args.family == "ipv4" else socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.addr, args.port))
    sock.listen(args.backlog)
    print(f"ready {sock.getsockname()[1]}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
