"""A process for the diagnosis lab: joins a memory cgroup, takes a comm, fills memory one way.

Run as a script, never imported by tests. Modes (each touches memory in 1 MiB steps so the
charge that crosses the limit happens inside the kernel's charge path):

* `--tmpfs FILE --mb N`: write N MiB into FILE on a tmpfs (shmem charged to our cgroup; the
  pages stay charged after we exit, which is the point), then wait.
* `--pipes N --mb M`: open N pipes, raise each to M MiB / N and fill it without reading
  (pipe buffers are kernel memory charged to the cgroup, in no process's RSS), then wait.
* `--msgq N`: in a private IPC namespace (gone when we die), fill SysV message queues with
  N MiB of messages: the kernel keeps them in kmalloc slab (unreclaimable, charged to the
  cgroup), the classic kernel-memory growth no process's RSS shows.
* `--anon N`: allocate and touch N MiB of anonymous memory, then wait.
* `--bind-node N` (with `--anon`): first bind our memory to NUMA node N (set_mempolicy
  MPOL_BIND), so the allocation runs out when that node does: CONSTRAINT_MEMORY_POLICY.
* `--write-dev DEV --mb N`: buffered writes of N MiB to the block device DEV (page cache of the
  device's inode, dirty until writeback reaches the device), then wait without syncing.

Prints `ready` when done (or `error ...`), then sleeps until killed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import sys
import time

PR_SET_NAME = 15
F_SETPIPE_SZ = 1031
MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


def set_comm(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    raw = name.encode("utf-8", "surrogateescape")[:15]
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(raw), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


def fill_tmpfs(path: str, mb: int) -> None:
    block = b"\x01" * MIB
    with open(path, "wb", buffering=0) as f:
        for _ in range(mb):
            f.write(block)


def fill_pipes(count: int, mb: int) -> list[int]:
    keep: list[int] = []
    per_pipe = max(mb * MIB // count, 65536)
    block = b"\x02" * 65536
    for _ in range(count):
        r, w = os.pipe()
        keep += [r, w]
        with contextlib.suppress(OSError):  # above pipe-max-size: keep the default size
            fcntl.fcntl(w, F_SETPIPE_SZ, per_pipe)
        os.set_blocking(w, False)
        while True:
            try:
                os.write(w, block)
            except BlockingIOError:
                break
    return keep


CLONE_NEWIPC = 0x08000000
IPC_PRIVATE = 0
IPC_CREAT = 0o1000
IPC_NOWAIT = 0o4000
MSG_TEXT = 8192
"""The default msgmax; two of them fill a queue at the default msgmnb (16384)."""


def fill_msg_queues(mb: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWIPC) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWIPC)")
    buf = ctypes.create_string_buffer(8 + MSG_TEXT)
    ctypes.memset(ctypes.addressof(buf), 1, 8)  # mtype 0x0101010101010101 > 0
    sent = 0
    while sent < mb * MIB:
        qid = libc.msgget(IPC_PRIVATE, IPC_CREAT | 0o600)
        if qid < 0:
            raise OSError(ctypes.get_errno(), "msgget")
        for _ in range(2):
            if libc.msgsnd(qid, buf, MSG_TEXT, IPC_NOWAIT) != 0:
                raise OSError(ctypes.get_errno(), "msgsnd")
            sent += MSG_TEXT
    return sent


MPOL_BIND = 2
SYS_SET_MEMPOLICY = 238  # x86_64


def bind_node(node: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    mask = ctypes.c_ulong(1 << node)
    if libc.syscall(SYS_SET_MEMPOLICY, MPOL_BIND, ctypes.byref(mask), 64) != 0:
        raise OSError(ctypes.get_errno(), "set_mempolicy(MPOL_BIND)")


def write_device(dev: str, mb: int) -> int:
    """Returns the fd, kept open: the last close of a block device syncs it (blkdev_put)."""
    block = b"\x03" * MIB
    fd = os.open(dev, os.O_WRONLY)
    for _ in range(mb):
        os.write(fd, block)
    return fd


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cgroup-procs", required=True)
    ap.add_argument("--comm", required=True)
    ap.add_argument("--tmpfs")
    ap.add_argument("--pipes", type=int)
    ap.add_argument("--mb", type=int, default=0)
    ap.add_argument("--anon", type=int, default=0)
    ap.add_argument("--msgq", type=int, default=0)
    ap.add_argument("--adj", type=int, default=0)
    ap.add_argument("--bind-node", type=int)
    ap.add_argument("--write-dev")
    args = ap.parse_args()
    with open(args.cgroup_procs, "w") as f:
        f.write(str(os.getpid()))
    set_comm(args.comm)
    # A guest's test runner protects itself with -1000; its helpers must be fair game again.
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write(str(args.adj))
    held: list[object] = []
    if args.bind_node is not None:
        bind_node(args.bind_node)
    if args.write_dev:
        held.append(write_device(args.write_dev, args.mb))
    if args.tmpfs:
        fill_tmpfs(args.tmpfs, args.mb)
    if args.msgq:
        fill_msg_queues(args.msgq)
    if args.pipes:
        held.append(fill_pipes(args.pipes, args.mb))
    for _ in range(args.anon):
        chunk = bytearray(MIB)
        chunk[::PAGE] = b"\x01" * (MIB // PAGE)
        held.append(chunk)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
