# ruff: noqa: E501  (real kernel lines and cgroup paths are longer than 100 characters)
"""Every real OOM capture in tests/fixtures/corpus, read through `read_lines`, with the expected
event fields written beside each file (fail2ban style). A new oom-*.txt without an entry fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kernbot.core.events import OomKillEvent
from kernbot.core.formats.reader import read_lines
from kernbot.core.oom.report import OomAssembler

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
K8S_V2_POD = "94eb36cd-29e1-478b-b365-4cb5dfc7d6fb"
K8S_V2_CID = "46b3e0a4df44b752b841aecca454e6e78995d567912a84950390bae6f6777a63"

# file -> (number of distinct reports, expectations on the LAST revision of the FIRST report)
EXPECTED: dict[str, tuple[int, dict[str, Any]]] = {
    "oom-3.2-rc3-global-oom_adj-era.txt": (
        1,
        {
            "kernel_era": "2.6.36-5.8",
            "global_oom": True,
            "complete": True,
            "trigger.comm": "xfs_db",
            "trigger.pid": 11341,
            "trigger.gfp_mask": "0x280da",
            "trigger.oom_score_adj": 0,
            "victim.pid": 11341,
            "victim.anon_rss_kb": 3927736,
            "victim.printed_score": 944,
            "totalpages": 1048560 - 36075 + 497976 // 4,
            "meminfo.total_swap_kb": 497976,
            "tasks#": 36,
            # The 3.2 table has no swapents/nr_ptes, so 833 < printed 944 (swap held the rest).
            "victim.oom_score": 833,
        },
    ),
    "oom-4.0-arm32-qemu-global-nr_pmds.txt": (
        1,
        {
            "kernel_era": "2.6.36-5.8",
            "victim.pid": 782,
            "trigger.pid": 783,
            "victim.printed_score": 716,
            "victim.oom_score": 718,
            "totalpages": 21850,
            "tasks#": 3,
            "meminfo.total_ram_kb": 25600 * 4,
        },
    ),
    "oom-4.20.12-x86-global-no-oomkill-line.txt": (
        1,
        {
            "kernel_era": "2.6.36-5.8",
            "global_oom": True,
            "victim.pid": 6435,
            "trigger.pid": 6436,
            "victim.oom_score": 957,
            "victim.printed_score": 957,
            "reaper.pid": 6435,
            "totalpages": 1523342 - 46911 + 2097148 // 4,
            "tasks#": 54,
            "revision": 1,
        },
    ),
    "oom-5.4.0-pgtables-bytes-labelled-kB-bug-fragment.txt": (
        1,
        {
            "victim.pid": 1878,
            "victim.pgtables_kb": 1269760 // 1024,
            "victim.uid": 1000,
            "victim.pgtables_bytes_labelled_kb": True,
            "tasks#": 1,
            "complete": True,
        },
    ),
    "oom-5.4.y-pgtables-fixed-fragment.txt": (
        1,
        {
            "victim.pid": 1436,
            "victim.pgtables_kb": 1264,
            "tasks#": 1,
        },
    ),
    "oom-6.11-qemu-stressng-global.txt": (
        1,
        {
            "kernel_era": "5.9+",
            "constraint": "CONSTRAINT_NONE",
            "global_oom": True,
            "trigger.pid": 116,
            "trigger.comm": "stress-ng-vm",
            "trigger.oom_score_adj": 1000,
            "trigger.gfp_mask": "0x440dc0(GFP_KERNEL_ACCOUNT|__GFP_COMP|__GFP_ZERO)",
            "victim.pid": 116,
            "victim.oom_score": 1989,
            "totalpages": 2029656,
            "tasks#": 4,
            "victim.pgtables_kb": 15676,
            "victim.uid": 0,
            "memcg.task_path": "/",
        },
    ),
    "oom-6.x-k8s-systemd-containerd-cgv2-memcg-grep.txt": (
        1,
        {
            "kernel_era": "5.9+",
            "constraint": "CONSTRAINT_MEMCG",
            "global_oom": False,
            "trigger.comm": "Thread-2",
            "victim.pid": 22609,
            "victim.comm": "node",
            "victim.anon_rss_kb": 4116684,
            "victim.oom_score_adj": 969,
            "memcg.usage_kb": 4194304,
            "memcg.limit_kb": 4194304,
            "memcg.failcnt": 1273284,
            "kubernetes.pod_uid": K8S_V2_POD,
            "kubernetes.container_id": K8S_V2_CID,
            "kubernetes.qos": "burstable",
            "kubernetes.runtime": "containerd",
            "group_kill": True,
            "group_victims#": 1,
            "revision": 2,
            "totalpages": 1048576,
            "victim.oom_score": (1000 + (1037695 + 969 * 1048) * 1000 // 1048576) * 2 // 3,
        },
    ),
    "oom-arch-6.1.1-global.txt": (
        1,
        {
            "kernel_era": "5.9+",
            "global_oom": True,
            "victim.pid": 473206,
            "victim.uid": 504,
            "memcg.task_path": "/user.slice/user-504.slice/session-2.scope",
            "reaper.pid": 473206,
            "meminfo.total_swap_kb": 25165820,
            "meminfo.free_swap_kb": 84,
            "tasks#": 112,
            "container.unit": "session-2.scope",
        },
    ),
    "oom-distro-4.18ish-backport-k8s-cgroupfs-cgv1-memcg-oomkill-line-UID-fragment.txt": (
        1,
        {
            "kernel_era": "2.6.36-5.8",
            "constraint": "CONSTRAINT_MEMCG",
            "victim.pid": 18524,
            "victim.uid": 0,
            "victim.pgtables_kb": 499712 // 1024,
            "victim.oom_score_adj": 999,
            "memcg.limit_kb": 585936,
            "memcg.memsw_limit_kb": None,
            "tasks#": 3,
            "kubernetes.pod_uid": "6b212546-f5dd-4fdf-bcc7-72a686638102",
            "kubernetes.qos": "burstable",
            "reaper.pid": 18524,
            "trigger.comm": None,
        },
    ),
    "oom-el7-3.10-killed-process-UID-variant-fragment.txt": (
        8,
        {
            "victim.pid": 799153,
            "victim.comm": "node",
            "victim.uid": 1000,
            "victim.shmem_rss_kb": 0,
            "complete": True,
        },
    ),
    "oom-el7-3.10.0-514-vendor-patched-k8s-cgroupfs-memcg-hybrid-oomkill-line.txt": (
        1,
        {
            "constraint": "CONSTRAINT_MEMCG",
            "trigger.comm": "runc:[2:INIT]",
            "trigger.pid": 12788,
            "victim.pid": 12788,
            "victim.comm": "runc:[2:INIT]",
            # `Kill process 12800 … score 997 or sacrifice child`, then `Killed process 12788`:
            # 997 is the score of 12800, the task chosen, not of the child that died.
            "victim.printed_score": None,
            "victim.oom_score_adj": 997,
            "memcg.limit_kb": 3145728,
            "tasks#": 3,
            "kubernetes.pod_uid": "6c4333b3-a663-11ea-b39f-6c92bf85beda",
            "kubernetes.container_id": "bbd5e4b5f9c13666dd0ec7ff7afb2c4c2b0ede40a4adf1de43cc31c606f283f5",
        },
    ),
    "oom-k8s-cgroupfs-cgv1-memcg-dmesgT-zh-locale-2lines.txt": (
        1,
        {
            "constraint": "CONSTRAINT_MEMCG",
            "victim.pid": 50624,
            "victim.uid": 10000,
            "victim.pgtables_kb": 21384,
            "victim.oom_score_adj": 969,
            "memcg.limit_kb": None,
            "kubernetes.pod_uid": "28fcb1a0-a45c-44e7-b9bf-e3b9360bedba",
            "kubernetes.container_id": "3e5e5eab87df615f4777e6f7f261a7fb62f4a7ee5bc3e25e3a5b5223ccd368fe",
            "kubernetes.qos": "burstable",
            "time": "2024-09-03T05:57:48",
        },
    ),
    "oom-kmsg-raw-k8s-systemd-docker-cgv1-memcg.txt": (
        1,
        {
            "complete": False,
            "constraint": "CONSTRAINT_MEMCG",
            "victim.pid": 2292670,
            "victim.comm": "main",
            "reaper.pid": 2292670,
            "memcg.limit_kb": 20480,
            "memcg.failcnt": 136,
            "tasks#": 2,
            "seq": 30574067,
            "mono_usec": 3816544225424,
            "kubernetes.pod_uid": "9eb0e64e-6e1a-43e4-b372-2603a3cc2941",
            "kubernetes.qos": "guaranteed",
            "kubernetes.runtime": "docker",
            "kubernetes.container_id": "663f6287c450aea2f849b82a30d1409059497b5de62846a286e55971d61e2650",
            "memcg.oom_path": "/kubepods.slice/kubepods-pod9eb0e64e_6e1a_43e4_b372_2603a3cc2941.slice",
        },
    ),
    "oom-panic_on_oom-sles15sp4-5.14.21.txt": (
        1,
        {
            "panic": True,
            "complete": False,
            "trigger.pid": 2272,
            "trigger.comm": "memeater",
            "victim.pid": None,
            "kernel_era": "5.9+",
        },
    ),
    "oom-panic_on_oom-syslogd-wall-broadcast.txt": (1, {"panic": True, "complete": False}),
    "oom-proxmox-5.15-cgv2-lxc-docker-memcg.txt": (
        1,
        {
            "kernel_era": "5.9+",
            "constraint": "CONSTRAINT_MEMCG",
            "victim.pid": 3902942,
            "trigger.pid": 3923954,
            "memcg.oom_path": "/lxc/39004",
            "memcg.swap_limit_kb": 0,
            "memcg.swap_usage_kb": 0,
            "totalpages": 31211520 // 4,
            "tasks#": 73,
            "victim.oom_score": (1000 + (3195335 + 27021312 // 4096) * 1000 // 7802880) * 2 // 3,
            "kubernetes": None,
            "container.lxc_id": "39004",
            "container.runtime": "docker",
        },
    ),
    "oom-rhel6-2.6.32-573-killed-process-UID-variant-line.txt": (
        1,
        {
            "victim.pid": 11726,
            "victim.uid": 498,
            "victim.comm": "mysqld",
            "victim.total_vm_kb": 7823732,
        },
    ),
    "oom-rhel6-2.6.32-syslog-fragment.txt": (
        1,
        {
            "kernel_era": "2.6.36-5.8",
            "trigger.comm": "mysqld",
            "trigger.oom_score_adj": 0,
            "victim.pid": 4144,
            "victim.uid": 497,
            "victim.printed_score": 963,
            "tasks#": 1,
            "host": "testvm1",
        },
    ),
    "oom-rhel7-3.10.0-514-global.txt": (
        1,
        {
            "kernel_era": "2.6.36-5.8",
            "global_oom": True,
            "victim.pid": 6576,
            "victim.oom_score": 651,
            "victim.printed_score": 651,
            "totalpages": 8379834 - 192987 + 8388604 // 4,
            "meminfo.total_ram_kb": 8379834 * 4,
        },
    ),
    "oom-rhel8-4.18.0-147-k8s-systemd-docker-cgv1-memcg.txt": (
        1,
        {
            "kernel_era": "2.6.36-5.8",
            "constraint": "CONSTRAINT_MEMCG",
            "victim.pid": 7093,
            "victim.uid": None,
            "trigger.pid": 7127,
            "trigger.oom_score_adj": 916,
            "memcg.limit_kb": 33554432,
            "memcg.memsw_limit_kb": 35651584,
            "reaper.pid": 7093,
            "kubernetes.pod_uid": "d63c4bbe-5f18-11ec-bdcd-d094668d7dd6",
            "kubernetes.runtime": "docker",
            "totalpages": 35651584 // 4,
        },
    ),
    "oom-ubuntu-4.15.0-63-k8s-cgroupfs-cgv1-memcg-syslog.txt": (
        1,
        {
            "kernel_era": "2.6.36-5.8",
            "victim.pid": 28285,
            "victim.oom_score": 1955,
            "victim.printed_score": 1955,
            "totalpages": 65536,
            "memcg.limit_kb": 262144,
            "kubernetes.pod_uid": "465a9fc1-0de9-44cd-b22c-7e6b23fd75f8",
            "kubernetes.container_id": "beead52e53d4918e7b2820c2712151f2833e4055bc72abc9ea287a02459fc55a",
            "host": "optiplex-2",
            "trigger.gfp_mask": "0x14000c0(GFP_KERNEL)",
        },
    ),
    "oom-ubuntu-5.13-sysrq-global.txt": (
        1,
        {
            "kernel_era": "5.9+",
            "trigger.order": -1,
            "trigger.comm": "kworker/0:2",
            "victim.pid": 651,
            "victim.comm": "unattended-upgr",
            "container.kind": "systemd-unit",
            "totalpages": 506349,
            "tasks#": 23,
        },
    ),
    "oom-ubuntu-azure-4.15.0-1037-docker-cgroupfs-cgv1-memcg-wrapped.txt": (
        1,
        {
            "victim.pid": 27281,
            "victim.oom_score": 1027,
            "victim.printed_score": 1027,
            "memcg.task_path": "/docker/0f2b3fcdd2578165ea77266cdc7b1ad43e75877b0ac1889ecda30a78cb78bd53",
            "memcg.oom_path": "/docker/0f2b3fcdd2578165ea77266cdc7b1ad43e75877b0ac1889ecda30a78cb78bd53",
            "container.runtime": "docker",
            "totalpages": 131072,
        },
    ),
}


def _get(event: OomKillEvent, dotted: str) -> Any:
    if dotted.endswith("#"):
        return len(getattr(event, dotted[:-1]))
    obj: Any = event.model_dump()
    for part in dotted.split("."):
        if obj is None:
            return None
        obj = obj.get(part)
    return obj


def assemble(path: Path) -> list[OomKillEvent]:
    asm = OomAssembler()
    events: list[OomKillEvent] = []
    with path.open(encoding="utf-8") as fh:
        for rec in read_lines(fh):
            events += asm.feed(rec)
    events += asm.flush()
    return events


def latest(events: list[OomKillEvent]) -> list[OomKillEvent]:
    """The last revision of each event id, in order of first appearance."""
    by_id: dict[str | None, OomKillEvent] = {}
    for e in events:
        prev = by_id.get(e.id)
        if prev is None or e.revision > prev.revision:
            by_id[e.id] = e
    return list(by_id.values())


def test_every_oom_corpus_file_has_expectations() -> None:
    files = {p.name for p in CORPUS.glob("oom-*.txt")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name: str) -> None:
    count, fields = EXPECTED[name]
    events = latest(assemble(CORPUS / name))
    assert len(events) == count
    first = events[0]
    for key, want in fields.items():
        assert _get(first, key) == want, key
    for e in events:
        assert e.lines and len(e.lines) <= 400
        OomKillEvent.model_validate_json(e.model_dump_json())


def test_printed_scores_agree_with_computed_where_the_corpus_verified_them() -> None:
    verified = [
        "oom-ubuntu-4.15.0-63-k8s-cgroupfs-cgv1-memcg-syslog.txt",
        "oom-ubuntu-azure-4.15.0-1037-docker-cgroupfs-cgv1-memcg-wrapped.txt",
        "oom-rhel7-3.10.0-514-global.txt",
        "oom-4.20.12-x86-global-no-oomkill-line.txt",
    ]
    for name in verified:
        victim = latest(assemble(CORPUS / name))[0].victim
        assert victim.oom_score == victim.printed_score, name
    arm = latest(assemble(CORPUS / "oom-4.0-arm32-qemu-global-nr_pmds.txt"))[0].victim
    assert arm.oom_score is not None and arm.printed_score is not None
    assert abs(arm.oom_score - arm.printed_score) <= arm.printed_score * 0.02


def test_el7_fragment_is_eight_separate_kills() -> None:
    events = latest(assemble(CORPUS / "oom-el7-3.10-killed-process-UID-variant-fragment.txt"))
    assert [e.victim.pid for e in events] == [
        799153,
        799402,
        799889,
        799707,
        799791,
        800660,
        800329,
        801542,
    ]
    assert len({e.id for e in events}) == 8
