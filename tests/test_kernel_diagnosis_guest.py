"""OOMs only inside the throwaway cgroup v2 guest (tests/lab/vmguest.py sets
KERNBOT_IN_VMGUEST=1), never on the host: system-wide ones (one grower, tmpfs in /dev/shm,
hugepages reserved, a dozen workers, SysV message queues), a NUMA node running out under a
memory policy and under a cpuset (the guest booted with --numa 2), and a memory cgroup full of
page cache under writeback to a stalled disk (dm-delay); each asserted on the diagnosis of what
the guest kernel printed. All of them, and tests/test_kernel_diagnosis.py again on cgroup v2:

    bash scripts/guest-test        # ~2 min; what it runs: see the script
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from lab.memcg_causes import IN_GUEST, CauseOom, Proc, cause_oom

pytestmark = [
    pytest.mark.root,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not IN_GUEST, reason="system-wide OOM: only inside tests/lab/vmguest.py"),
]


@pytest.fixture(autouse=True)
def runner_protected() -> Iterator[None]:
    """The guest's pytest must survive the OOMs it provokes (root in the guest may lower it)."""
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write("-1000")
    yield


def _ram_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no MemTotal")


def _causes(oom: CauseOom) -> list[str]:
    return [f.cause for f in oom.event.diagnosis]


def _evidence(oom: CauseOom, cause: str) -> dict[str, Any]:
    for f in oom.event.diagnosis:
        if f.cause == cause:
            return f.evidence
    raise AssertionError(f"no {cause}: {oom.event.diagnosis}\n" + "\n".join(oom.event.lines))


def test_global_one_grower(root_kernel: None) -> None:
    idle = [Proc("kb-idle", ["--anon", "1"]) for _ in range(2)]
    oom = cause_oom(
        [idle, [Proc("kb-grower", ["--anon", "4000"], wait_ready=False)]],
        limit_mb=None,
        timeout=400,
    )
    assert oom.event.global_oom, oom.event.lines
    causes = _causes(oom)
    assert causes[0] == "one_process", oom.event.diagnosis
    assert _evidence(oom, "one_process")["comm"] == "kb-grower"
    assert "no_swap" in causes
    acc = oom.event.accounting
    assert acc is not None and acc.scope == "host" and (acc.total_kb or 0) > 0
    # Every kB of RAM in exactly one part: the parts add up to the total.
    assert sum(acc.parts_kb.values()) == acc.total_kb


def test_global_dev_shm_is_shmem(root_kernel: None) -> None:
    size = _ram_mb() * 40 // 100  # /dev/shm is a tmpfs of half the RAM by default
    writer = Proc("kb-tmpfs", ["--tmpfs", "/dev/shm/kernbot-blob", "--mb", str(size)])
    try:
        oom = cause_oom(
            [[writer], [Proc("kb-alloc", ["--anon", "4000"], wait_ready=False)]],
            limit_mb=None,
            timeout=400,
        )
    finally:
        with contextlib.suppress(OSError):
            os.unlink("/dev/shm/kernbot-blob")
    assert _causes(oom)[0] == "shmem", oom.event.diagnosis
    assert _evidence(oom, "shmem")["kb"] >= size * 1024 * 0.9


def test_global_hugepages_reserved(root_kernel: None) -> None:
    pages = _ram_mb() * 45 // 100 // 2
    with open("/proc/sys/vm/nr_hugepages", "w") as f:
        f.write(str(pages))
    try:
        with open("/proc/sys/vm/nr_hugepages") as f:
            got = int(f.read())
        if got * 2 < _ram_mb() * 0.25:
            pytest.skip(f"the guest reserved only {got} hugepages")
        oom = cause_oom(
            [[Proc("kb-grower", ["--anon", "4000"], wait_ready=False)]], limit_mb=None, timeout=400
        )
    finally:
        with open("/proc/sys/vm/nr_hugepages", "w") as f:
            f.write("0")
    assert "hugepages" in _causes(oom), oom.event.diagnosis
    huge = _evidence(oom, "hugepages")
    assert huge["kb"] == got * 2048
    assert huge["free_kb"] == got * 2048


def test_global_dozen_workers(root_kernel: None) -> None:
    per = _ram_mb() // 10
    workers = [Proc("kb-worker", ["--anon", str(per)], wait_ready=False) for _ in range(12)]
    oom = cause_oom([workers], limit_mb=None, timeout=400)
    causes = _causes(oom)
    assert causes[0] == "many_processes", oom.event.diagnosis
    assert _evidence(oom, "many_processes")["program"] == "kb-worker"


def test_global_message_queues_are_unreclaimable_slab(root_kernel: None) -> None:
    """More unreclaimable slab than user memory: the kernel prints its cache table, and the
    finding names the biggest caches."""
    size = _ram_mb() * 45 // 100
    oom = cause_oom(
        [
            [Proc("kb-msgq", ["--msgq", str(size)])],
            [Proc("kb-grower", ["--anon", "4000"], wait_ready=False)],
        ],
        limit_mb=None,
        timeout=400,
    )
    assert _causes(oom)[0] == "slab", oom.event.diagnosis
    slab = _evidence(oom, "slab")
    assert slab["kb"] >= size * 1024
    top = slab["top_caches"]
    assert isinstance(top, list) and top and str(top[0]["name"]).startswith("kmalloc")


NUMA_WANTED = os.environ.get("KERNBOT_GUEST_NUMA", "")
"""Set by scripts/guest-test when it boots the guest with `--numa 2`: a missing node is a
failure then, not a skip."""


def _node_meminfo_kb(node: int, key: str) -> int:
    with open(f"/sys/devices/system/node/node{node}/meminfo") as f:
        for line in f:
            parts = line.split()  # "Node 1 MemFree:  123456 kB"
            if parts[2] == f"{key}:":
                return int(parts[3])
    raise AssertionError(f"no {key} for node {node}")


def _two_nodes() -> None:
    with open("/sys/devices/system/node/has_memory") as f:
        nodes = f.read().strip()
    if nodes != "0-1":
        if NUMA_WANTED:
            pytest.fail(f"KERNBOT_GUEST_NUMA={NUMA_WANTED} but nodes with memory: {nodes}")
        pytest.skip(f"nodes with memory {nodes}: boot the guest with vmguest.py --numa 2")


def _zone_free_kb(oom: CauseOom) -> dict[int, int]:
    """Free kB per node from the report's own zone lines (`Node 1 DMA32 free:1234kB ...`)."""
    out: dict[int, int] = {}
    for line in oom.event.lines:
        m = re.search(r"Node (\d+) (?:DMA|DMA32|Normal|Movable) free:(\d+)kB", line)
        if m:
            out[int(m.group(1))] = out.get(int(m.group(1)), 0) + int(m.group(2))
    return out


def _meminfo_free_kb(oom: CauseOom) -> int:
    for line in oom.event.lines:
        m = re.search(r"(?:^|\s)free:(\d+) free_pcp:", line)
        if m:
            return int(m.group(1)) * 4
    raise AssertionError("no Mem-Info free: in\n" + "\n".join(oom.event.lines))


def _assert_confined(oom: CauseOom, comm: str, summary: str, free_before: int) -> None:
    """`summary`: the start of the kernel's oom-kill: line (constraint, nodemask, cpuset...)."""
    ev = oom.event
    text = "\n".join(ev.lines)
    assert ev.victim.comm == comm, text
    assert ev.global_oom and ev.constraint == summary.split(",", maxsplit=1)[0].split("=")[1], text
    assert f"oom-kill:{summary}" in text
    causes = _causes(oom)
    assert causes[0] == "cpuset_or_mempolicy", ev.diagnosis
    e = _evidence(oom, "cpuset_or_mempolicy")
    assert e["allowed_nodes"] == [1]
    # The kernel prints only the allowed node's zones (SHOW_MEM_FILTER_NODES): node 1's free is
    # the sum of its zone lines; what was free elsewhere is Mem-Info's free: minus that.
    zone_free = _zone_free_kb(oom)
    assert set(zone_free) == {1}, text
    assert e["allowed_free_kb"] == zone_free[1]
    assert e["free_elsewhere_kb"] == _meminfo_free_kb(oom) - zone_free[1]
    # Node 0 was left alone: most of what it had free before is still free.
    assert e["free_elsewhere_kb"] >= free_before // 2, (e, free_before)
    assert e["allowed_free_kb"] < e["free_elsewhere_kb"] // 4, e
    cited = [ev.lines[i] for i in e["lines"]]
    assert any("oom-kill:" in c for c in cited) and any("Node 1 " in c for c in cited)
    assert "node 1 had" in ev.diagnosis[0].summary
    # Accounted over node 1 alone: its zones' managed: is the total, every kB in one part.
    managed = sum(int(m) for m in re.findall(r"Node 1 \w+ free:.* managed:(\d+)kB", text))
    acc = ev.accounting
    assert acc is not None and acc.total_kb == managed > 0
    assert sum(acc.parts_kb.values()) == managed
    assert causes[1] == "one_process" and _evidence(oom, "one_process")["comm"] == comm


def test_numa_mempolicy_bind_runs_out_of_its_node(root_kernel: None) -> None:
    """set_mempolicy(MPOL_BIND, node 1) and allocate twice node 1's RAM: node 1 runs out while
    node 0 still has its memory free; the kernel says CONSTRAINT_MEMORY_POLICY."""
    _two_nodes()
    node_mb = _node_meminfo_kb(1, "MemTotal") // 1024
    free0 = _node_meminfo_kb(0, "MemFree")
    grower = ["--bind-node", "1", "--anon", str(node_mb * 2), "--adj", "1000"]
    oom = cause_oom([[Proc("kb-bound", grower, wait_ready=False)]], limit_mb=None, timeout=400)
    # The policy's nodes are the allocation's nodemask; the task's cpuset still allows both.
    kill = "constraint=CONSTRAINT_MEMORY_POLICY,nodemask=1,cpuset=/,mems_allowed=0-1,"
    _assert_confined(oom, "kb-bound", kill, free0)
    e = _evidence(oom, "cpuset_or_mempolicy")
    assert e["elsewhere_nodes"] == [0]
    assert "node 0 had" in oom.event.diagnosis[0].summary


def test_numa_cpuset_mems_runs_out_of_its_node(root_kernel: None) -> None:
    """A cgroup v2 cpuset with cpuset.mems=1: the same shortage, confined by the cpuset."""
    _two_nodes()
    node_mb = _node_meminfo_kb(1, "MemTotal") // 1024
    free0 = _node_meminfo_kb(0, "MemFree")
    grower = ["--anon", str(node_mb * 2), "--adj", "1000"]
    oom = cause_oom(
        [[Proc("kb-cpuset", grower, wait_ready=False)]],
        limit_mb=None,
        cgroup_files={"cpuset.mems": "1"},
        timeout=400,
    )
    # No nodemask here (6.1): the cpuset's mems_allowed says where the allocation could go.
    kill = "constraint=CONSTRAINT_CPUSET,nodemask=(null),cpuset=kernbot-cause-"
    _assert_confined(oom, "kb-cpuset", kill, free0)
    assert ",mems_allowed=1," in "\n".join(oom.event.lines)


DELAY_MS = 60_000
"""dm-delay holds every write 60 s: a disk (or NFS server) that has stopped answering."""


@contextlib.contextmanager
def _sysctl(path: str, value: str) -> Iterator[None]:
    with open(path) as f:
        before = f.read().strip()
    with open(path, "w") as f:
        f.write(value)
    try:
        yield
    finally:
        with open(path, "w") as f:
            f.write(before)


def _dmsetup(*args: str) -> None:
    subprocess.run(["dmsetup", *args, "--noudevsync"], check=True, capture_output=True)


@contextlib.contextmanager
def _stalled_disk() -> Iterator[str]:
    """A dm-delay device over null_blk (no memory behind it: writes are dropped). Afterwards a
    suspend flushes the held writes at once and the device is removed."""
    from lab.guestmods import load_module

    load_module("configfs")
    load_module("null_blk", "nr_devices=1 gb=1")
    load_module("dm-mod")
    load_module("dm-delay")
    sectors = 1 << 21  # 1 GiB
    _dmsetup("create", "kbstall", "--table", f"0 {sectors} delay /dev/nullb0 0 {DELAY_MS}")
    disk = "/dev/mapper/kbstall"
    try:
        _dmsetup("mknodes", "kbstall")  # no udev in the guest
        # Held open so that no lab process is the device's last closer: that one would sync it
        # (blkdev_put) and sit in D state, unkillable, until the held writes went through.
        held = os.open(disk, os.O_RDONLY)
        try:
            yield disk
        finally:
            _dmsetup("suspend", "kbstall")  # dm-delay's presuspend sends what it held now
            _dmsetup("reload", "kbstall", "--table", f"0 {sectors} linear /dev/nullb0 0")
            _dmsetup("resume", "kbstall")
            os.fsync(held)
            os.close(held)
    finally:
        _dmsetup("remove", "kbstall")


def test_memcg_dirty_pages_on_a_stalled_disk_are_page_cache(root_kernel: None) -> None:
    """A writer dirties 40 MiB of a stalled block device's page cache inside a 96 MiB cgroup
    (the dirty limits raised to 60% / 50%, as write-heavy hosts tune them), then a second process
    fills the rest with anon memory: reclaim cannot clean the dirty pages and the cgroup OOMs
    with them still dirty or under writeback."""
    with (
        _stalled_disk() as disk,
        _sysctl("/proc/sys/vm/dirty_ratio", "60"),
        _sysctl("/proc/sys/vm/dirty_background_ratio", "50"),
    ):
        oom = cause_oom(
            [
                [Proc("kb-writer", ["--write-dev", disk, "--mb", "40"])],
                [Proc("kb-anon", ["--anon", "200", "--adj", "1000"], wait_ready=False)],
            ],
            limit_mb=96,
            timeout=300,
        )
    text = "\n".join(oom.event.lines)
    stat = dict(re.findall(r"^(file_dirty|file_writeback|file) (\d+)$", text, re.M))
    dirty_kb = (int(stat["file_dirty"]) + int(stat["file_writeback"])) // 1024
    assert oom.event.victim.comm == "kb-anon", text
    assert "page_cache" in _causes(oom), (oom.event.diagnosis, text)
    e = _evidence(oom, "page_cache")
    assert e["kb"] == dirty_kb >= 30 * 1024, (e, stat)
    assert e["writeback_kb"] == int(stat["file_writeback"]) // 1024
    usage = re.search(r"^memory: usage (\d+)kB, limit 98304kB", text, re.M)
    assert usage is not None, text
    assert e["base_kb"] == int(usage.group(1))
    assert e["share"] >= 0.3
