"""The cgroup readers on injected trees (KERNBOT_CGROUP_ROOT): v1, v2, the host, top processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernbot.agent.cgroups import CgroupReader, host_sample, top_processes
from kernbot.agent.cgroups.files import parse_pressure

MIB = 1024 * 1024
V1_NO_LIMIT = "9223372036854771712"
POD = "kubepods/burstable/pod0f2a7c7e-3b1d-4c55-9d0a-6f1e2b3c4d5e"


def write(d: Path, files: dict[str, str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text + "\n")


def v1_group(usage: int, limit: str, inactive: int) -> dict[str, str]:
    return {
        "memory.usage_in_bytes": str(usage),
        "memory.limit_in_bytes": limit,
        "memory.stat": f"cache 1\ninactive_file 7\ntotal_inactive_file {inactive}\nrss 5",
        "memory.failcnt": "3",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2",
        "cgroup.procs": "1\n",
    }


def v2_group(current: int, mx: str, inactive: int, high: str = "max") -> dict[str, str]:
    return {
        "memory.current": str(current),
        "memory.max": mx,
        "memory.high": high,
        "memory.stat": f"anon 10\nfile 20\ninactive_file {inactive}\nshmem 0",
        "memory.events": "low 0\nhigh 4\nmax 9\noom 1\noom_kill 1\noom_group_kill 0",
        "memory.pressure": "some avg10=12.50 avg60=3.00 avg300=1.00 total=100\n"
        "full avg10=11.25 avg60=2.00 avg300=0.50 total=50",
    }


@pytest.fixture
def v1_root(tmp_path: Path) -> Path:
    mem = tmp_path / "memory"
    write(mem, v1_group(900 * MIB, V1_NO_LIMIT, 0))
    write(mem / "kubepods", v1_group(300 * MIB, V1_NO_LIMIT, 0))
    write(mem / POD, v1_group(200 * MIB, str(512 * MIB), 50 * MIB))
    write(mem / POD / ("a" * 64), v1_group(190 * MIB, str(256 * MIB), 40 * MIB))
    (mem / POD / ("a" * 64) / "cgroup.procs").write_text("2\n3\n")
    write(mem / "user.slice", v1_group(10 * MIB, V1_NO_LIMIT, 0))
    return tmp_path


def test_v1_finds_limited_cgroups_and_computes_the_working_set(v1_root: Path) -> None:
    r = CgroupReader(v1_root)
    assert r.version == 1
    assert r.discover() == {"/" + POD, f"/{POD}/{'a' * 64}"}
    samples = {s.cgroup: s for s in r.sample(100.0, hot=lambda _: False)}
    pod = samples["/" + POD]
    assert pod.limit_kb == 512 * 1024
    assert pod.usage_kb == 200 * 1024
    assert pod.working_set_kb == 150 * 1024  # usage - total_inactive_file
    assert pod.psi_full is None and pod.version == 1
    assert r.memory_events("/" + POD) == {"failcnt": 3, "under_oom": 0, "oom_kill": 2}
    assert sorted(r.pids("/" + POD)) == [1, 2, 3]  # the pod's own and its containers'
    assert r.pids(f"/{POD}/{'a' * 64}") == [2, 3]


def test_limit_above_host_memory_never_binds(v1_root: Path) -> None:
    r = CgroupReader(v1_root)
    assert r.discover(host_total_kb=300 * 1024) == {f"/{POD}/{'a' * 64}"}


def test_v1_reads_only_usage_until_refresh_or_hot(v1_root: Path) -> None:
    r = CgroupReader(v1_root, refresh_s=60.0)
    r.discover()
    path = v1_root / "memory" / POD
    r.sample(0.0, hot=lambda _: False)
    (path / "memory.stat").write_text("total_inactive_file 0\n")
    (path / "memory.usage_in_bytes").write_text(str(300 * MIB))
    s = {x.cgroup: x for x in r.sample(5.0, hot=lambda _: False)}["/" + POD]
    assert s.usage_kb == 300 * 1024 and s.working_set_kb == 250 * 1024  # stale inactive_file
    s = {x.cgroup: x for x in r.sample(10.0, hot=lambda c: c == "/" + POD)}["/" + POD]
    assert s.working_set_kb == 300 * 1024  # hot: memory.stat read again
    (path / "memory.limit_in_bytes").write_text(V1_NO_LIMIT)
    assert "/" + POD not in {x.cgroup for x in r.sample(70.0, hot=lambda _: False)}


def test_removed_cgroup_is_skipped_then_forgotten(v1_root: Path) -> None:
    import shutil

    r = CgroupReader(v1_root)
    r.discover()
    shutil.rmtree(v1_root / "memory" / POD / ("a" * 64))
    assert {s.cgroup for s in r.sample(1.0, hot=lambda _: True)} == {"/" + POD}
    assert r.discover() == {"/" + POD}


def test_v2_reads_max_high_stat_and_pressure(tmp_path: Path) -> None:
    write(tmp_path, {"cgroup.controllers": "cpuset cpu io memory pids"})
    unit = tmp_path / "system.slice" / "payments.service"
    write(tmp_path / "system.slice", v2_group(800 * MIB, "max", 0))
    write(unit, v2_group(460 * MIB, str(512 * MIB), 20 * MIB, high=str(480 * MIB)))
    r = CgroupReader(tmp_path)
    assert r.version == 2
    assert r.discover() == {"/system.slice/payments.service"}
    (s,) = r.sample(1.0, hot=lambda _: False)
    assert s.working_set_kb == 440 * 1024 and s.limit_kb == 512 * 1024
    assert s.high_kb == 480 * 1024
    assert (s.psi_some, s.psi_full) == (12.5, 11.25)
    assert r.memory_events(s.cgroup)["oom_kill"] == 1


def test_hybrid_layout_reads_v1_memory(v1_root: Path) -> None:
    write(v1_root / "unified", {"cgroup.controllers": ""})
    assert CgroupReader(v1_root).version == 1


def test_no_memory_controller(tmp_path: Path) -> None:
    r = CgroupReader(tmp_path)
    assert r.version is None and r.discover() == set()


def test_host_sample_counts_swap(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "meminfo": "MemTotal:  1000000 kB\nMemFree: 1 kB\nMemAvailable:  100000 kB\n"
            "SwapTotal: 500000 kB\nSwapFree: 400000 kB",
        },
    )
    write(
        tmp_path / "pressure",
        {
            "memory": "some avg10=1.00 avg60=0 avg300=0 total=1\n"
            "full avg10=0.50 avg60=0 avg300=0 total=1"
        },
    )
    s = host_sample(tmp_path)
    assert s is not None and s.cgroup == "/"
    assert s.limit_kb == 1_500_000 and s.working_set_kb == 900_000 + 100_000
    assert s.psi_full == 0.5


def test_top_processes_by_rss(tmp_path: Path) -> None:
    for pid, name, rss in ((10, "<!channel>", 500), (11, "small", 5), (12, "big", 900)):
        write(tmp_path / str(pid), {"status": f"Name:\t{name}\nUmask:\t0022\nVmRSS:\t   {rss} kB"})
    top = top_processes(tmp_path, None, n=2)
    assert [(p.pid, p.comm, p.rss_kb) for p in top] == [(12, "big", 900), (10, "<!channel>", 500)]
    assert [p.pid for p in top_processes(tmp_path, [11, 99], n=5)] == [11]


def test_pressure_parser_tolerates_garbage() -> None:
    assert parse_pressure(b"some avg10=x\nfull avg10=2.00 avg60=1") == (None, 2.0)
    assert parse_pressure(b"") == (None, None)
