# ruff: noqa: E501  (real kernel numbers written as the sums they come from)
# Evidence values are JSON (numbers, line lists, cache tables) read back by key and compared:
# mypy: disable-error-code="union-attr,operator,index"
"""Every real OOM capture in tests/fixtures/corpus with its expected diagnosis, the numbers
worked out by hand from the printed lines (written as the arithmetic, so a reader can check them
against the file), and every cited line checked to hold the numbers it is cited for. A new
oom-*.txt without an entry fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kernbot.core.detector import detect
from kernbot.core.events import OomKillEvent
from kernbot.core.formats.reader import read_lines

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
NOT_IN_REPORT = "not in the report: "

# file -> (causes in order, {cause: {evidence key: value}}, accounting checks, gaps that must be said)
EXPECTED: dict[str, tuple[list[str], dict[str, dict[str, Any]], dict[str, Any], list[str]]] = {
    "oom-3.2-rc3-global-oom_adj-era.txt": (
        ["one_process", "swap_exhausted"],
        {
            # managed: is not printed on 3.2: (pages RAM - reserved) * 4
            "one_process": {"comm": "xfs_db", "kb": 981936 * 4, "base_kb": (1048560 - 36075) * 4},
            "swap_exhausted": {"swap_used_kb": 497976 - 0, "swap_total_kb": 497976},
        },
        {"scope": "host", "shmem": 11 * 4, "slab_unreclaimable": 4014 * 4, "free": 6585 * 4},
        [],
    ),
    "oom-4.0-arm32-qemu-global-nr_pmds.txt": (
        ["one_process", "no_swap"],
        {"one_process": {"comm": "oom", "kb": 64612, "base_kb": 87400}},
        {
            "scope": "host",
            "total_kb": 87400,
            "anon": (16781 + 1052 - 1596) * 4,
            "shmem": 1596 * 4,
            "free": 283 * 4,
        },
        [],
    ),
    "oom-4.20.12-x86-global-no-oomkill-line.txt": (
        ["one_process", "swap_exhausted"],
        {
            "one_process": {"comm": "oom", "kb": 5650184},
            "swap_exhausted": {"swap_used_kb": 2097148, "swap_total_kb": 2097148},
        },
        {"scope": "host"},
        [],
    ),
    "oom-5.4.0-pgtables-bytes-labelled-kB-bug-fragment.txt": (
        [],
        {},
        {"scope": "host", "total_kb": None},
        ["Mem-Info", "total RAM"],
    ),
    "oom-5.4.y-pgtables-fixed-fragment.txt": (
        [],
        {},
        {"scope": "host", "total_kb": None},
        ["Mem-Info", "total RAM"],
    ),
    "oom-6.11-qemu-stressng-global.txt": (
        ["one_process", "no_swap"],
        {
            "one_process": {
                "comm": "stress-ng-vm",
                "pid": 116,
                "kb": 1995298 * 4,  # the task table's rss
                "base_kb": 15360 + 1964520 + 6138744,
            }
        },
        {
            "scope": "host",
            "total_kb": 15360 + 1964520 + 6138744,
            "anon": (1999425 - 4157) * 4,
            "shmem": 4157 * 4,
            "slab_unreclaimable": 5771 * 4,
            "kernel_stack": 2144,
            "page_tables": 4009 * 4,
            "free": (1097 + 8616) * 4,
        },
        [],
    ),
    "oom-6.x-k8s-systemd-containerd-cgv2-memcg-grep.txt": (
        ["memcg_limit"],
        {"memcg_limit": {"usage_kb": 4194304, "limit_kb": 4194304, "failcnt": 1273284}},
        {"scope": "memcg", "total_kb": 4194304},
        ["memory.stat", "the task table"],
    ),
    "oom-arch-6.1.1-global.txt": (
        # 16 GiB of RAM, a 24 GiB swap device (zram-sized) full, and 3.1 GiB in no counter.
        ["one_process", "kernel_other", "swap_exhausted"],
        {
            "one_process": {"comm": "doxygen", "kb": 2308581 * 4},
            "kernel_other": {"kb": 3244192},
            "swap_exhausted": {"swap_used_kb": 25165820 - 84, "swap_total_kb": 25165820},
        },
        {
            "scope": "host",
            "total_kb": 15360 + 3283120 + 12774792,
            "anon": (1413442 + 1509191 - 19540) * 4,
            "slab_unreclaimable": 89303 * 4,
            "slab_reclaimable": 130091 * 4,
            "kernel_stack": 10592,
        },
        [],
    ),
    "oom-distro-4.18ish-backport-k8s-cgroupfs-cgv1-memcg-oomkill-line-UID-fragment.txt": (
        ["memcg_limit"],
        {"memcg_limit": {"usage_kb": 585936, "limit_kb": 585936, "failcnt": 75129}},
        {"scope": "memcg"},
        ["memory.stat", "no single cause"],
    ),
    "oom-el7-3.10-killed-process-UID-variant-fragment.txt": (
        [],
        {},
        {"scope": "host"},
        ["Mem-Info", "the task table"],
    ),
    "oom-el7-3.10.0-514-vendor-patched-k8s-cgroupfs-memcg-hybrid-oomkill-line.txt": (
        # kmem 3143468 of a 3145728 kB limit: the kernel memory of the pod filled it.
        ["memcg_limit", "kernel_other"],
        {
            "memcg_limit": {"usage_kb": 3145728, "limit_kb": 3145728, "failcnt": 14406932},
            "kernel_other": {"kb": 3143468, "base_kb": 3145728},
        },
        {"scope": "memcg", "anon": 40 + 2220, "kernel_other": 3143468, "free": 0},
        [],
    ),
    "oom-k8s-cgroupfs-cgv1-memcg-dmesgT-zh-locale-2lines.txt": (
        ["memcg_limit"],
        {"memcg_limit": {"usage_kb": None, "limit_kb": None}},
        {"scope": "memcg"},
        ["usage and limit", "memory.stat"],
    ),
    "oom-kmsg-raw-k8s-systemd-docker-cgv1-memcg.txt": (
        ["memcg_limit", "one_process"],
        {
            "memcg_limit": {"usage_kb": 20480, "limit_kb": 20480, "failcnt": 136},
            "one_process": {"comm": "main", "base_kb": 20480},
        },
        {"scope": "memcg", "anon": 19800, "free": 0},
        [],
    ),
    "oom-panic_on_oom-sles15sp4-5.14.21.txt": ([], {}, {"scope": "host"}, ["Mem-Info"]),
    "oom-panic_on_oom-syslogd-wall-broadcast.txt": ([], {}, {"scope": "host"}, ["Mem-Info"]),
    "oom-proxmox-5.15-cgv2-lxc-docker-memcg.txt": (
        # 21 php-fpm workers, the largest 12 GiB of a 30 GiB container: the pool's size.
        ["memcg_limit", "many_processes", "no_swap"],
        {
            "memcg_limit": {"usage_kb": 31211520, "limit_kb": 31211520, "failcnt": 83420},
            "many_processes": {"program": "php-fpm", "count": 21},
            "no_swap": {"swap_total_kb": 0},
        },
        {
            "scope": "memcg",
            "anon": 31154200576 // 1024,
            "shmem": 687980544 // 1024,
            "page_cache": 688283648 // 1024 - 687980544 // 1024,
            "slab_unreclaimable": 15298680 // 1024,
            "kernel_stack": 5242880 // 1024,
            "page_tables": 84332544 // 1024,
            "kernel_other": 405504 // 1024 + 4009216 // 1024,
            "free": 0,
        },
        [],
    ),
    "oom-rhel6-2.6.32-573-killed-process-UID-variant-line.txt": ([], {}, {}, ["Mem-Info"]),
    "oom-rhel6-2.6.32-syslog-fragment.txt": ([], {}, {}, ["Mem-Info"]),
    "oom-rhel7-3.10.0-514-global.txt": (
        ["one_process", "swap_exhausted"],
        {
            "one_process": {"comm": "mysqld", "kb": 5157063 * 4},
            "swap_exhausted": {"swap_used_kb": 8388604, "swap_total_kb": 8388604},
        },
        {
            "scope": "host",
            "anon": (7355653 + 660960 - 87896) * 4,
            "shmem": 87896 * 4,
            "free": (39513 + 2958) * 4,
        },
        [],
    ),
    "oom-rhel8-4.18.0-147-k8s-systemd-docker-cgv1-memcg.txt": (
        # memory+swap at its limit; 28 GB of the 32 GB in RAM is shmem: not "raise the limit".
        ["memcg_limit", "shmem"],
        {
            "memcg_limit": {"memsw_usage_kb": 35651584, "memsw_limit_kb": 35651584},
            "shmem": {"kb": 28013264, "base_kb": 32461120},
        },
        {"scope": "memcg", "anon": 3958288, "shmem": 28013264, "page_cache": 28030012 - 28013264},
        ["the task table"],
    ),
    "oom-ubuntu-4.15.0-63-k8s-cgroupfs-cgv1-memcg-syslog.txt": (
        ["memcg_limit", "one_process"],
        {"one_process": {"comm": "calloc", "kb": 65119 * 4, "base_kb": 262144}},
        {"scope": "memcg", "anon": 40 + 260400, "kernel_other": 1704},
        [],
    ),
    "oom-ubuntu-5.13-sysrq-global.txt": (
        # SysRq-f: nothing ran out; the victim had adj 0 while the bigger snapd had -900.
        ["adj_forced", "no_swap"],
        {"adj_forced": {"bigger_comm": "snapd", "victim_adj": 0, "bigger_adj": -900}},
        {"scope": "host"},
        ["manual OOM"],
    ),
    "oom-ubuntu-azure-4.15.0-1037-docker-cgroupfs-cgv1-memcg-wrapped.txt": (
        ["memcg_limit", "one_process"],
        {"one_process": {"comm": "java", "kb": 134371 * 4, "base_kb": 524288}},
        {"scope": "memcg", "anon": 520580},
        [],
    ),
}


def _events(name: str) -> list[OomKillEvent]:
    with (CORPUS / name).open(encoding="utf-8", errors="replace") as fh:
        return [e for e in detect(read_lines(fh)) if isinstance(e, OomKillEvent)]


def test_every_corpus_file_has_an_expected_diagnosis() -> None:
    files = {p.name for p in CORPUS.glob("oom-*.txt")}
    assert files == set(EXPECTED)


def _numbers_in(line: str) -> set[int]:
    out: set[int] = set()
    for token in line.replace(",", " ").replace(":", " ").replace("=", " ").split():
        digits = token.removesuffix("kB").removesuffix("KB")
        if digits.isdigit():
            out.add(int(digits))
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_diagnosis(name: str) -> None:
    causes, evidence, accounting, gaps = EXPECTED[name]
    ev = _events(name)[0]
    assert [f.cause for f in ev.diagnosis] == causes
    got = {f.cause: f for f in ev.diagnosis}
    for cause, expected in evidence.items():
        for key, value in expected.items():
            assert got[cause].evidence[key] == value, (cause, key)
    acc = ev.accounting
    assert acc is not None
    for key, value in accounting.items():
        if key in ("scope", "total_kb"):
            assert getattr(acc, key) == value, key
        else:
            assert acc.parts_kb[key] == value, key
    said = " ".join(ev.diagnosis_gaps)
    for gap in gaps:
        assert gap in said
    for f in ev.diagnosis:
        assert f.summary and f.summary[-1] == "."
        for i in f.evidence.get("lines", []):
            assert 0 <= i < len(ev.lines)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cited_lines_hold_the_numbers(name: str) -> None:
    """A finding's evidence cites the lines its printed numbers came from."""
    ev = _events(name)[0]
    for f in ev.diagnosis:
        cited = [ev.lines[i] for i in f.evidence.get("lines", [])]
        if f.cause == "memcg_limit" and f.evidence.get("limit_kb") is not None:
            assert any(f.evidence["usage_kb"] in _numbers_in(c) for c in cited)
        if f.cause in ("one_process", "many_processes", "adj_forced"):
            assert cited, f.cause
            assert all(c.lstrip().startswith("[") or "process" in c for c in cited)
        if f.cause == "shmem" and name.startswith("oom-rhel8"):
            assert any("shmem:28013264KB" in c for c in cited)
        if f.cause == "kernel_other" and "el7" in name:
            assert any(c.startswith("kmem: usage 3143468kB") for c in cited)


PUBLIC = Path(__file__).parent / "fixtures" / "diagnosis"


def test_public_report_order3_on_fragmented_free_memory() -> None:
    """Ubuntu 4.4, an i915 order-3 kmalloc: 17,904 kB free in DMA32 above its (zero) watermark
    but no free block above 16 kB; 5 GB of VirtualBox guest RAM is in no counter
    (tests/fixtures/diagnosis/PROVENANCE.md)."""
    with (PUBLIC / "oom-4.4-ubuntu-order3-fragmentation-excerpt.txt").open() as fh:
        ev = next(e for e in detect(read_lines(fh)) if isinstance(e, OomKillEvent))
    # VirtualBox's 5.3 GB of RSS is its guest RAM, mapped from its driver: in no counter.
    assert [f.cause for f in ev.diagnosis] == ["fragmentation", "one_process", "kernel_other"]
    assert ev.diagnosis[1].evidence["comm"] == "VirtualBox"
    assert ev.diagnosis[1].evidence["kb"] == 1329785 * 4
    frag = ev.diagnosis[0].evidence
    assert frag["order"] == 3 and frag["need_kb"] == 4 << 3
    assert frag["zone"] == "DMA32" and frag["free_kb"] == 17904 and frag["min_kb"] == 0
    assert frag["largest_block_kb"] == 16  # 59*16kB, then 0*32kB and up
    cited = [ev.lines[i] for i in frag["lines"]]
    assert any("DMA32: 266*4kB" in c for c in cited)
    total = 15892 + 3487044 + 4569836
    known = (
        (396111 + 234417 - 68381)  # anon without shmem
        + (1305 + 1265)  # file LRU
        + 68381  # shmem
        + (28428 + 22839)  # slab
        + 11019  # page tables
        + 1457  # unevictable
        + (8413 + 62)  # free
    ) * 4 + (3616 + 5136)  # kernel stacks per zone (kB)
    assert ev.diagnosis[2].evidence["kb"] == total - known
    assert ev.advice[0].title.startswith("Free memory was fragmented")
    assert "cat /proc/buddyinfo" in ev.advice[0].commands


@pytest.mark.parametrize(
    ("name", "first_advice", "limit_advice"),
    [
        # 86% shmem: cleaning tmpfs is the fix; a bigger limit would only delay the next kill.
        ("oom-rhel8-4.18.0-147-k8s-systemd-docker-cgv1-memcg.txt", "Shared memory", False),
        # 100% kmem: a kernel-side leak in the pod's cgroup, not the application's heap.
        (
            "oom-el7-3.10.0-514-vendor-patched-k8s-cgroupfs-memcg-hybrid-oomkill-line.txt",
            "Memory outside every process",
            False,
        ),
        # One process filled its own limit: raise it or find the leak, then the process advice.
        ("oom-ubuntu-4.15.0-63-k8s-cgroupfs-cgv1-memcg-syslog.txt", "Raise the memory limit", True),
        # A global OOM: the cause's advice first, then who uses the host's memory.
        ("oom-6.11-qemu-stressng-global.txt", "One process held most of the memory", False),
    ],
)
def test_advice_follows_the_diagnosis(name: str, first_advice: str, limit_advice: bool) -> None:
    ev = _events(name)[0]
    titles = [a.title for a in ev.advice]
    assert titles[0].startswith(first_advice), titles
    assert any(t.startswith("Raise the memory limit") for t in titles) == limit_advice, titles
    if name.startswith("oom-ubuntu-4.15"):
        assert titles[2].startswith("One process held most of the memory: calloc"), titles


def _public(name: str) -> OomKillEvent:
    with (PUBLIC / name).open(encoding="utf-8", errors="replace") as fh:
        return next(e for e in detect(read_lines(fh)) if isinstance(e, OomKillEvent))


NUMA_CASES: dict[str, dict[str, Any]] = {
    # set_mempolicy(MPOL_BIND, node 1): nodemask=1, the task's cpuset allows 0-1.
    "oom-6.1-vmguest-numa-mempolicy-bind-kmsg.txt": {
        "kill": ("kb-bound", 132, "CONSTRAINT_MEMORY_POLICY", "nodemask=1"),
        "allowed_free": 18928,
        "min_kb": 19016,
        "meminfo_free": 61867 * 4,
        "elsewhere_nodes": [0],
        "node_parts": {"anon": 8 + 345652 - 0, "page_cache": 28 + 4, "kernel_stack": 520},
    },
    # cgroup v2 cpuset.mems=1: nodemask=(null), the cpuset's mems_allowed=1.
    "oom-6.1-vmguest-numa-cpuset-mems-kmsg.txt": {
        "kill": ("kb-cpuset", 133, "CONSTRAINT_CPUSET", "mems_allowed=1"),
        "allowed_free": 18752,
        "min_kb": 19016,
        "meminfo_free": 62280 * 4,
        "elsewhere_nodes": [],
        "node_parts": {"anon": 8 + 346128 - 0, "page_cache": 4 + 40, "kernel_stack": 536},
    },
}


@pytest.mark.parametrize("name", sorted(NUMA_CASES))
def test_guest_numa_node_ran_out_with_free_memory_elsewhere(name: str) -> None:
    """Real 6.1 reports from the QEMU guest with two 384 MiB nodes (vmguest.py --numa 2; see
    tests/fixtures/diagnosis/PROVENANCE.md). The kernel printed node 1's zones only
    (SHOW_MEM_FILTER_NODES); what was free elsewhere is Mem-Info's global free: minus node 1's."""
    case = NUMA_CASES[name]
    allowed_free, min_kb, meminfo_free = case["allowed_free"], case["min_kb"], case["meminfo_free"]
    elsewhere_nodes, node_parts = case["elsewhere_nodes"], case["node_parts"]
    ev = _public(name)
    comm, pid, constraint, mask = case["kill"]
    assert (ev.victim.comm, ev.victim.pid, ev.constraint) == (comm, pid, constraint)
    assert [f.cause for f in ev.diagnosis] == ["cpuset_or_mempolicy", "one_process", "no_swap"]
    f = ev.diagnosis[0]
    e = f.evidence
    assert e["allowed_nodes"] == [1] and e["mask"] == mask
    assert e["nodes"] == [{"node": 1, "free_kb": allowed_free, "min_kb": min_kb, "allowed": True}]
    assert e["allowed_free_kb"] == allowed_free
    assert e["total_free_kb"] == meminfo_free
    assert e["free_elsewhere_kb"] == meminfo_free - allowed_free
    assert e["elsewhere_nodes"] == elsewhere_nodes
    cited = [ev.lines[i] for i in e["lines"]]
    assert any(c.startswith(f"oom-kill:constraint={constraint},") for c in cited)
    assert any(c.startswith(f"Node 1 DMA32 free:{allowed_free}kB") for c in cited)
    assert any(f"free:{meminfo_free // 4} " in c for c in cited)
    other = "node 0" if elsewhere_nodes else "the other nodes"
    elsewhere_mib = (meminfo_free - allowed_free) / 1024
    assert f"node 1 had {allowed_free / 1024:.1f} MiB free" in f.summary
    assert f"{other} had {elsewhere_mib:.1f} MiB free" in f.summary
    # The accounting is node 1's RAM (its zone's managed:), from node 1's own lines.
    acc = ev.accounting
    assert acc is not None and acc.total_kb == 384452
    for part, kb in node_parts.items():
        assert acc.parts_kb[part] == kb, part
    assert sum(acc.parts_kb.values()) == acc.total_kb
    assert any("slab of the allowed nodes" in g for g in ev.diagnosis_gaps)
    assert ev.diagnosis[1].evidence["comm"] == comm
    assert ev.diagnosis[1].evidence["base_kb"] == 384452
    assert ev.advice[0].title.endswith("to node 1, which ran out: not the whole host")


def test_node_list() -> None:
    from kernbot.core.oom.diagnosis import node_list

    assert node_list("0-1,3") == [0, 1, 3]
    assert node_list("1") == [1]
    assert node_list("(null)") is None
    assert node_list("0-99999999") is None
    assert node_list("3-1") is None
    assert node_list("x") is None


def test_guest_memcg_oom_with_page_cache_under_writeback() -> None:
    """Real 6.1 memcg OOM from the QEMU guest: 40 MiB written to a dm-delay device that held
    every write 60 s, then anon memory filled the rest of a 96 MiB cgroup (PROVENANCE.md)."""
    ev = _public("oom-6.1-vmguest-memcg-writeback-stalled-disk-kmsg.txt")
    assert (ev.victim.comm, ev.constraint) == ("kb-anon", "CONSTRAINT_MEMCG")
    causes = [f.cause for f in ev.diagnosis]
    assert causes == ["memcg_limit", "one_process", "page_cache", "no_swap"]
    f = ev.diagnosis[2]
    e = f.evidence
    assert e["kb"] == (0 + 41943040) // 1024  # file_dirty + file_writeback, bytes
    assert (e["dirty_kb"], e["writeback_kb"]) == (0, 41943040 // 1024)
    assert e["page_cache_kb"] == 41943040 // 1024 - 0  # file - shmem
    assert e["base_kb"] == 98304 and e["share"] == round(40960 / 98304, 3)
    assert [ev.lines[i] for i in e["lines"]] == [
        "Memory cgroup stats for /kernbot-cause-a38276c4a773:"
    ]
    assert (
        "40.0 MiB of page cache was waiting for the disk (0 KiB dirty, 40.0 MiB under" in f.summary
    )
    assert any(a.title.startswith("Dirty page cache") for a in ev.advice)
