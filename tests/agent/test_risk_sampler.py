"""The agent's OOM-risk sampler on an injected cgroup tree and /proc, with a fake clock:
discovery, warnings with top processes, the kill hand-off, and restarts that do not warn twice."""

from __future__ import annotations

from pathlib import Path

from kernbot.agent.cgroups import CgroupReader
from kernbot.agent.risk import RiskSampler
from kernbot.core.events import Memcg, OomKillEvent
from kernbot.core.risk import RiskSettings, RiskTracker

MIB = 1024 * 1024
T0 = 1_700_000_000.0
APP = "system.slice/app.service"


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    cg, proc = tmp_path / "cg", tmp_path / "proc"
    (cg / "memory" / APP).mkdir(parents=True)
    (cg / "memory" / "memory.usage_in_bytes").write_text(str(900 * MIB))
    (cg / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712")
    app = cg / "memory" / APP
    (app / "memory.limit_in_bytes").write_text(str(128 * MIB))
    (app / "memory.stat").write_text("total_inactive_file 0\n")
    (app / "cgroup.procs").write_text("4242\n")
    (proc / "4242").mkdir(parents=True)
    (proc / "4242" / "status").write_text("Name:\t$(reboot)\nVmRSS:\t  120000 kB\n")
    (proc / "meminfo").write_text("MemTotal: 8000000 kB\nMemAvailable: 7000000 kB\n")
    return cg, proc


def _sampler(cg: Path, proc: Path, state: Path) -> RiskSampler:
    s = RiskSampler(
        reader=CgroupReader(cg),
        tracker=RiskTracker(host="n1", boot_id="b1", settings=RiskSettings()),
        proc_root=proc,
        state_path=state,
        discover_s=30.0,
    )
    s.load(T0)
    return s


def _usage(cg: Path, mib: int) -> None:
    (cg / "memory" / APP / "memory.usage_in_bytes").write_text(str(mib * MIB))


def test_warns_once_across_a_restart_and_hands_the_kill_over(tmp_path: Path) -> None:
    cg, proc = _tree(tmp_path)
    state = tmp_path / "oom_risk.json"
    s = _sampler(cg, proc, state)
    _usage(cg, 60)
    assert s.sample(T0) == []
    _usage(cg, 120)  # 94 %
    (ev,) = s.sample(T0 + 5)
    assert ev.state == "start" and ev.cgroup == "/" + APP
    assert ev.container is not None and ev.container.unit == "app.service"
    assert [(p.pid, p.comm, p.rss_kb) for p in ev.top] == [(4242, "$(reboot)", 120000)]
    assert ev.cgroup_version == 1 and ev.limit_kb == 128 * 1024
    assert state.exists()

    again = _sampler(cg, proc, state)  # the agent restarted
    assert again.sample(T0 + 10) == []
    assert [r.id for r in again.risks()] == [ev.id]

    kill = OomKillEvent(id="b1:77", memcg=Memcg(oom_path="/" + APP))
    killed = again.on_kill(kill, T0 + 20)
    assert killed is not None and killed.state == "killed" and killed.kill_id == "b1:77"
    assert kill.risk_id == ev.id
    later = OomKillEvent(id="b1:77", revision=1, memcg=Memcg(oom_path="/" + APP))
    assert again.on_kill(later, T0 + 21) is None  # a later revision of the same kill
    assert later.risk_id == ev.id

    third = _sampler(cg, proc, state)  # restarted after the kill: still no new warning
    assert third.sample(T0 + 30) == []
    assert third.risks() == []


def test_a_removed_cgroup_ends_its_episode(tmp_path: Path) -> None:
    import shutil

    cg, proc = _tree(tmp_path)
    s = _sampler(cg, proc, tmp_path / "state.json")
    _usage(cg, 125)
    assert [e.state for e in s.sample(T0)] == ["start"]
    shutil.rmtree(cg / "memory" / APP)
    assert [e.state for e in s.sample(T0 + 31)] == ["ended"]


def test_a_broken_state_file_is_ignored(tmp_path: Path) -> None:
    cg, proc = _tree(tmp_path)
    state = tmp_path / "oom_risk.json"
    state.write_text("{not json")
    s = _sampler(cg, proc, state)
    _usage(cg, 125)
    assert [e.state for e in s.sample(T0)] == ["start"]


def test_the_process_that_grows_is_named_from_the_second_update(tmp_path: Path) -> None:
    from kernbot.core.advice import advise

    cg, proc = _tree(tmp_path)
    s = _sampler(cg, proc, tmp_path / "state.json")
    _usage(cg, 120)
    (start,) = s.sample(T0)
    assert start.top[0].growth_kb_per_s is None  # nothing to compare with yet
    (proc / "4242" / "status").write_text("Name:\t$(reboot)\nVmRSS:\t  125000 kB\n")
    _usage(cg, 126)
    (ongoing,) = s.sample(T0 + 40)
    assert ongoing.state == "ongoing"
    assert ongoing.top[0].growth_kb_per_s == 125.0  # 5000 kB in 40 s
    titles = [a.title for a in advise(ongoing)]
    assert "$(reboot) (pid 4242) is the process that grows" in titles
    assert all("$(reboot)" not in c for a in advise(ongoing) for c in a.commands)
