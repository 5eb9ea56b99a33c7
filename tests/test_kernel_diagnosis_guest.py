"""System-wide OOMs, only inside the throwaway cgroup v2 guest (tests/lab/vmguest.py sets
KERNBOT_IN_VMGUEST=1), never on the host: one grower, tmpfs in /dev/shm, hugepages reserved,
a dozen workers; each asserted on the diagnosis of what the guest kernel printed.

    flock /tmp/kernbot-vmguest.lock python3 tests/lab/vmguest.py --mem 512 -- \\
        env KERNBOT_IN_VMGUEST=1 .venv/bin/python -m pytest -p no:cacheprovider \\
        tests/test_kernel_diagnosis_guest.py tests/test_kernel_diagnosis.py
"""

from __future__ import annotations

import contextlib
import os
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
