"""Real memory-cgroup OOMs whose cause the test controls, and the diagnosis of what the kernel
printed: tmpfs files (shmem), a dozen identical workers (many_processes), one grower among idle
neighbours (one_process), pipe buffers (kernel memory charged to the cgroup). On this host's
cgroup hierarchy (v1 here; v2 through tests/lab/vmguest.py)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from lab.memcg_causes import CauseOom, Proc, cause_oom, tmpfs_dir

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]


def _causes(oom: CauseOom) -> list[str]:
    return [f.cause for f in oom.event.diagnosis]


def _finding(oom: CauseOom, cause: str) -> dict[str, Any]:
    for f in oom.event.diagnosis:
        if f.cause == cause:
            return f.evidence
    raise AssertionError(f"no {cause} in {oom.event.diagnosis}\n{oom.event.lines}")


def test_tmpfs_file_then_small_allocator_is_shmem(root_kernel: None) -> None:
    with tmpfs_dir() as tmp:
        oom = cause_oom(
            [
                [Proc("kb-tmpfs", ["--tmpfs", os.path.join(tmp, "blob"), "--mb", "40"])],
                [Proc("kb-alloc", ["--anon", "60"], wait_ready=False)],
            ],
            limit_mb=64,
        )
    causes = _causes(oom)
    assert causes[0] == "memcg_limit", oom.event.diagnosis
    assert causes[1] == "shmem", oom.event.diagnosis
    shmem = _finding(oom, "shmem")
    # 40 MiB written from inside the cgroup, as the kernel's memory.stat counted it.
    assert 40 * 1024 * 0.95 <= shmem["kb"] <= 40 * 1024 + 64, shmem
    assert shmem["share"] >= 0.5
    assert oom.event.memcg is not None and oom.event.memcg.limit_kb == oom.limit_kb
    assert "one_process" not in causes
    assert oom.event.advice[0].title.startswith("Shared memory"), oom.event.advice[0]


def test_a_dozen_identical_workers_is_many_processes(root_kernel: None) -> None:
    workers = [Proc("kb-worker", ["--anon", "6"], wait_ready=False) for _ in range(12)]
    oom = cause_oom([workers], limit_mb=72)
    causes = _causes(oom)
    assert causes[:2] == ["memcg_limit", "many_processes"], oom.event.diagnosis
    many = _finding(oom, "many_processes")
    assert many["program"] == "kb-worker"
    rows = [t for t in oom.event.tasks if t.name == "kb-worker"]
    assert many["count"] == len(rows) >= 5
    assert many["kb"] == sum(t.rss_kb or 0 for t in rows)
    assert many["largest_kb"] < oom.limit_kb / 2


def test_one_grower_among_idle_neighbours_is_one_process(root_kernel: None) -> None:
    idle = [Proc("kb-idle", ["--anon", "1"]) for _ in range(3)]
    grower = [Proc("kb-grower", ["--anon", "400"], wait_ready=False)]
    oom = cause_oom([idle, grower], limit_mb=128)
    causes = _causes(oom)
    assert causes[:2] == ["memcg_limit", "one_process"], oom.event.diagnosis
    one = _finding(oom, "one_process")
    assert one["comm"] == "kb-grower"
    assert one["pid"] == oom.pids["kb-grower"][0] == oom.event.victim.pid
    assert one["share"] >= 0.5
    assert "many_processes" not in causes


def test_pipe_buffers_are_kernel_memory(root_kernel: None) -> None:
    try:
        oom = cause_oom(
            [[Proc("kb-pipes", ["--pipes", "200", "--mb", "200"], wait_ready=False)]],
            limit_mb=64,
            timeout=30,
        )
    except RuntimeError as e:
        if "no kill of our processes" in str(e):
            pytest.skip("this kernel fails pipe writes at the limit instead of OOM-killing")
        raise
    causes = _causes(oom)
    assert causes[0] == "memcg_limit", oom.event.diagnosis
    assert causes[1] == "kernel_other", oom.event.diagnosis
    kernel = _finding(oom, "kernel_other")
    assert kernel["share"] >= 0.5


def test_message_queues_are_kernel_slab(root_kernel: None) -> None:
    """SysV messages live in kmalloc slab charged to the cgroup: cgroup v2's memory.stat names
    it slab; v1 only prints one kmem number, so there it is kernel memory."""
    oom = cause_oom(
        [
            [Proc("kb-msgq", ["--msgq", "40"])],
            [Proc("kb-alloc", ["--anon", "60"], wait_ready=False)],
        ],
        limit_mb=64,
    )
    causes = _causes(oom)
    assert causes[0] == "memcg_limit", oom.event.diagnosis
    expected = "slab" if oom.cgroup_version == 2 else "kernel_other"
    assert causes[1] == expected, oom.event.diagnosis
    kernel = _finding(oom, expected)
    # 40 MiB of message text, in 4 kB + 8 kB kmalloc objects: at least that much slab.
    assert kernel["kb"] >= 40 * 1024, kernel
