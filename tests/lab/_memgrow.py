"""A process for the OOM-risk lab: joins a memory cgroup, then grows at a steady rate.

Run as a script (`python -S _memgrow.py --cgroup-procs P --rate-mib-s 1 [--hold-mib N]`), never
imported by tests. Every step allocates and touches 1 MiB so the growth is resident memory (the
working set), not page cache. With `--hold-mib` it stops growing at N MiB and holds steady. It
prints `ready` once it joined the cgroup and `at N` after each MiB, and sleeps until killed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cgroup-procs", required=True)
    ap.add_argument("--rate-mib-s", type=float, required=True)
    ap.add_argument("--hold-mib", type=int, default=None)
    args = ap.parse_args()
    with open(args.cgroup_procs, "w") as f:
        f.write(str(os.getpid()))
    print("ready", flush=True)
    chunks = []
    step = 1.0 / args.rate_mib_s
    t0 = time.monotonic()
    n = 0
    while args.hold_mib is None or n < args.hold_mib:
        chunk = bytearray(MIB)
        chunk[::PAGE] = b"\x01" * (MIB // PAGE)
        chunks.append(chunk)
        n += 1
        print(f"at {n}", flush=True)
        delay = t0 + n * step - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print("holding", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
