"""A process for the OOM lab: joins a memory cgroup, takes a chosen comm, allocates and waits.

Run as a script (`python _memhog.py --cgroup-procs P --comm NAME --mb N [--adj 1000]`), never
imported by tests. Order matters: join the cgroup first so the allocation is charged to it, set
the comm so the kernel prints our name, raise oom_score_adj (the write is checked: this machine
only allows raising it), touch every page so the memory is really resident, then say `ready`
on stdout and sleep until killed. Memory is touched in 1 MiB steps so a trigger that crosses the
limit faults inside the kernel's charge path, which is what makes the kernel name it the trigger.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time

PR_SET_NAME = 15
MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


def set_comm(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    raw = name.encode("utf-8", "surrogateescape")[:15]
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(raw), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cgroup-procs", required=True)
    ap.add_argument("--comm", required=True)
    ap.add_argument("--mb", type=int, required=True)
    ap.add_argument("--adj", type=int, default=None)
    args = ap.parse_args()
    with open(args.cgroup_procs, "w") as f:
        f.write(str(os.getpid()))
    set_comm(args.comm)
    if args.adj is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(args.adj))
        with open("/proc/self/oom_score_adj") as f:
            got = int(f.read())
        if got != args.adj:
            print(f"error oom_score_adj is {got}, wanted {args.adj}", flush=True)
            return 3
    chunks = []
    for _ in range(args.mb):
        chunk = bytearray(MIB)
        chunk[::PAGE] = b"\x01" * (MIB // PAGE)
        chunks.append(chunk)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
