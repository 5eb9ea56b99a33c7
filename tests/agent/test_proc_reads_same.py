"""Reading /proc/PID files with `os.open`/`os.read` must give what `Path.read_text` gave: the same
"who is next" list and the same process facts, whatever the files hold (hostile names with
`\\r`, undecodable bytes, junk scores, files larger than one read, missing or odd entries).

The first version is written out plainly here as the reference."""

from __future__ import annotations

import heapq
import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kernbot.agent.proc.processes import (
    CHUNK,
    Identify,
    memory_cgroup,
    read_process,
    rss_kb,
    top_by_oom_score,
)
from kernbot.core.cgroup_identity import identify
from kernbot.core.context import ProcInfo


def first_read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None


def first_read_int(path: Path) -> int | None:
    text = first_read(path)
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def first_read_process(root: Path, pid: int, ident: Identify | None) -> ProcInfo | None:
    base = root / str(pid)
    comm = first_read(base / "comm")
    if comm is None:
        return None
    info = ProcInfo(
        pid=pid,
        comm=comm.removesuffix("\n"),
        oom_score=first_read_int(base / "oom_score"),
        oom_score_adj=first_read_int(base / "oom_score_adj"),
    )
    status = first_read(base / "status")
    if status is not None:
        info.rss_kb = rss_kb(status)
    cgroup_text = first_read(base / "cgroup")
    if cgroup_text is not None:
        info.cgroup = memory_cgroup(cgroup_text)
    if info.cgroup and ident is not None:
        k8s = ident(info.cgroup)
        if k8s is not None:
            info.pod_uid = k8s.pod_uid
            info.container_id = k8s.container_id
            info.namespace = k8s.namespace
            info.pod = k8s.pod
            info.container = k8s.container
    return info


def first_top(root: Path, n: int, ident: Identify | None) -> list[ProcInfo]:
    if n <= 0:
        return []
    pids = [int(e.name) for e in root.iterdir() if e.name.isdigit()]
    scored = (
        (score, -pid)
        for pid in pids
        if (score := first_read_int(root / str(pid) / "oom_score")) is not None
    )
    out: list[ProcInfo] = []
    for score, neg_pid in heapq.nlargest(n * 2 + 8, scored):
        info = first_read_process(root, -neg_pid, ident)
        if info is None:
            continue
        if info.oom_score is None:
            info.oom_score = score
        out.append(info)
        if len(out) == n:
            break
    out.sort(key=lambda p: (-(p.oom_score or 0), p.pid))
    return out


POD = "/kubepods/burstable/pod0f1c2d3e-1111-2222-3333-444455556666/" + "3b" * 32
numbers = st.one_of(
    st.integers(-1000, 2000).map(lambda i: f"{i}\n".encode()),
    st.sampled_from(
        [
            b"",
            b"\n",
            b"  12  \n",
            b"7 8\n",
            b"x\n",
            b"1_000\n",
            b"+5",
            b"\xff\xfe9",
            b"3\r\n",
            b"4\r",
        ]
    ),
    st.sampled_from(["\u0663\n", "\u00a012\n", "12\u00a0\n"]).map(str.encode),  # Unicode digits
    st.integers(0, 99).map(lambda i: str(i).encode() + b" " * (CHUNK - 3) + b"tail"),  # > 1 read
    st.integers(0, 9).map(lambda i: str(i).encode() + b"\n" * (CHUNK - 1)),  # exactly one read
    st.integers(0, 3).map(lambda i: b" " * (CHUNK * i + CHUNK - 1) + b"42\n"),  # in the 2nd read
)
names = st.one_of(
    st.text(max_size=20).map(lambda t: (t + "\n").encode("utf-8", "surrogatepass")),
    st.sampled_from([b"a\rb\n", b"a\r\nb\n", b"\r", b"bad\xc3(\n", b"\xe2\x82", b"x" * 5000]),
)
statuses = st.sampled_from(
    [
        b"Name:\tx\nVmRSS:\t  1234 kB\n",
        b"VmRSS:\n",
        b"VmRSS:\tlots kB\n",
        b"Name:\tx\n",
        b"",
        b"Groups:\t" + b"1 " * CHUNK + b"\nVmRSS:\t  77 kB\n",  # past the first read
    ]
)
cgroups = st.sampled_from(
    [
        f"12:memory:{POD}\n0::/other\n".encode(),
        b"0::/system.slice/a.service\n",
        f"0::{POD}\r\n".encode(),
        b"5:cpu,memory:/lxc/1\n",
        b"junk",
    ]
)
files = st.fixed_dictionaries(
    {},
    optional={
        "comm": names,
        "oom_score": numbers,
        "oom_score_adj": numbers,
        "status": statuses,
        "cgroup": cgroups,
    },
)


def _write(root: Path, tree: dict[str, dict[str, bytes] | None]) -> None:
    for name, entries in tree.items():
        if entries is None:  # a plain file where a process directory would be
            (root / name).write_bytes(b"1\n")
            continue
        (root / name).mkdir()
        for fname, data in entries.items():
            if data == b"<dir>":  # a directory where a file would be
                (root / name / fname).mkdir()
            else:
                (root / name / fname).write_bytes(data)


@settings(max_examples=400, deadline=None)
@given(
    tree=st.dictionaries(
        st.one_of(st.integers(1, 60).map(str), st.sampled_from(["self", "sys", "1a", "007"])),
        st.one_of(
            files,
            st.none(),
            st.just({"comm": b"d\n", "oom_score": b"<dir>", "status": b"<dir>"}),
        ),
        max_size=16,
    ),
    n=st.sampled_from([0, 1, 3, 10]),
    with_identity=st.booleans(),
)
def test_proc_files_read_as_before(
    tree: dict[str, dict[str, bytes] | None], n: int, with_identity: bool
) -> None:
    ident = identify if with_identity else None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write(root, tree)
        want = first_top(root, n, ident)
        got = top_by_oom_score(root, n, ident)
        assert [p.model_dump_json() for p in got] == [p.model_dump_json() for p in want]
        for name in tree:
            if name.isdigit():
                one, first = (
                    read_process(root, int(name), ident),
                    first_read_process(root, int(name), ident),
                )
                assert (one and one.model_dump_json()) == (first and first.model_dump_json())


def test_the_live_proc_reads_as_before() -> None:
    """This process's own files on the real /proc (its size may change between the reads)."""
    got = read_process(Path("/proc"), os.getpid(), identify)
    want = first_read_process(Path("/proc"), os.getpid(), identify)
    assert got is not None and want is not None
    assert got.rss_kb is not None and want.rss_kb is not None
    assert got.model_dump(exclude={"rss_kb"}) == want.model_dump(exclude={"rss_kb"})
    assert got.oom_score is not None and got.comm
