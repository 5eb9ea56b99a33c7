"""Per-process facts from /proc/PID: who the OOM killer would pick next, and where it lives.

`oom_score` is read live rather than computed so it matches what the kernel would do now (it
includes oom_score_adj and the kernel era's scale). Processes vanish while being read; every read
tolerates that. `comm` is kept exactly as the kernel shows it: escaping is the renderer's job.

Cost (issue 11): "who is next" reads every process's oom_score, once a second while kills come.
Python's `open()` makes seven system calls for a file (open, fstat, ioctl, lseek, two reads,
close) and pathlib builds a path object per file; `os.open`/`os.read`/`os.close` on a string path
make three, and give the same text (`_read`).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from kernbot.core.context import ProcInfo
from kernbot.core.events import Kubernetes

Identify = Callable[[str], Kubernetes | None]
"""cgroup path -> Kubernetes identity (pod uid, container id, qos) or None."""


CHUNK = 4096
"""Bytes asked for per read: a /proc/PID file this module reads fits (status is ~1.5 KB)."""


def _read(path: str) -> str | None:
    """The file's text as `Path.read_text(encoding="utf-8", errors="replace")` gives it
    (undecodable bytes replaced, `\r\n` and `\r` read as `\n`), or None when it cannot be
    read. A read shorter than asked is taken as the end of the file, as it is for /proc's
    small files and regular files: that saves the empty read that would confirm it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        data = os.read(fd, CHUNK)
        if len(data) == CHUNK:
            chunks = [data]
            while chunk := os.read(fd, CHUNK):
                chunks.append(chunk)
            data = b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)
    text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _read_int(path: str) -> int | None:
    text = _read(path)
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def memory_cgroup(text: str) -> str | None:
    """The cgroup path that holds the memory limit: the v1 `memory` line, else the v2 `0::` line."""
    unified: str | None = None
    for line in text.splitlines():
        hier, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if "memory" in controllers.split(","):
            return path
        if hier == "0" and controllers == "":
            unified = path
    return unified


def rss_kb(status_text: str) -> int | None:
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def pids(root: Path) -> Iterator[int]:
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        if name.isdigit():
            yield int(name)


def read_process(root: Path, pid: int, identify: Identify | None = None) -> ProcInfo | None:
    """Everything kernbot shows about one process, or None when it is gone."""
    base = f"{os.fspath(root)}/{pid}"
    comm = _read(f"{base}/comm")
    if comm is None:
        return None
    info = ProcInfo(
        pid=pid,
        comm=comm.removesuffix("\n"),
        oom_score=_read_int(f"{base}/oom_score"),
        oom_score_adj=_read_int(f"{base}/oom_score_adj"),
    )
    status = _read(f"{base}/status")
    if status is not None:
        info.rss_kb = rss_kb(status)
    cgroup_text = _read(f"{base}/cgroup")
    if cgroup_text is not None:
        info.cgroup = memory_cgroup(cgroup_text)
    if info.cgroup and identify is not None:
        k8s = identify(info.cgroup)
        if k8s is not None:
            info.pod_uid = k8s.pod_uid
            info.container_id = k8s.container_id
            info.namespace = k8s.namespace
            info.pod = k8s.pod
            info.container = k8s.container
    return info


def top_by_oom_score(root: Path, n: int, identify: Identify | None = None) -> list[ProcInfo]:
    """The `n` processes with the highest live oom_score, highest first (ties: lower pid first).

    Only oom_score is read for every process; the full record only for the winners.
    """
    if n <= 0:
        return []
    base = os.fspath(root)
    scored = (
        (score, -pid)
        for pid in pids(root)
        if (score := _read_int(f"{base}/{pid}/oom_score")) is not None
    )
    out: list[ProcInfo] = []
    for score, neg_pid in heapq.nlargest(n * 2 + 8, scored):
        info = read_process(root, -neg_pid, identify)
        if info is None:
            continue
        if info.oom_score is None:
            info.oom_score = score
        out.append(info)
        if len(out) == n:
            break
    out.sort(key=lambda p: (-(p.oom_score or 0), p.pid))
    return out
