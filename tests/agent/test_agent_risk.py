"""OOM risk inside the whole agent (the in-process harness): the sampler's warning goes to the
outbox, and the kernel's kill of that pod names the warning and ends it as `killed`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent_harness import make_agent

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
MEMCG_OOM = (CORPUS / "oom-6.x-k8s-systemd-containerd-cgv2-memcg-grep.txt").read_text().splitlines()
POD = (
    "kubepods.slice/kubepods-burstable.slice/"
    "kubepods-burstable-pod94eb36cd_29e1_478b_b365_4cb5dfc7d6fb.slice"
)
CONTAINER = (
    POD
    + "/cri-containerd-"
    + "46b3e0a4df44b752b841aecca454e6e78995d567912a84950390bae6f6777a63.scope"
)
GIB = 1 << 30


def _tree(root: Path) -> None:
    """cgroup v2: the pod of the corpus report and its one container, both 4 GiB, at 97 %."""
    (root / "cgroup.controllers").parent.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    for rel in (POD, CONTAINER):
        d = root / rel
        d.mkdir(parents=True, exist_ok=True)
        (d / "memory.max").write_text(str(4 * GIB))
        (d / "memory.current").write_text(str(int(4 * GIB * 0.97)))
        (d / "memory.high").write_text("max")
        (d / "memory.stat").write_text("anon 4000000000\ninactive_file 0\n")
        (d / "memory.pressure").write_text("some avg10=1.00 avg60=0 avg300=0 total=1\n")
        (d / "cgroup.procs").write_text("")


async def test_warning_then_the_kill_names_it_and_ends_it(tmp_path: Path) -> None:
    cg = tmp_path / "cg"
    _tree(cg)
    h = make_agent(tmp_path / "state", cgroup_root=cg, risk_percent=90.0)
    await h.agent.start()
    try:
        assert h.agent.risk_stage is not None
        await h.agent.risk_stage.sample()
        risks = [b for b in h.outbox.puts if b["kind"] == "oom_risk"]
        assert [(r["state"], r["cgroup"]) for r in risks] == [("start", "/" + CONTAINER)]
        start = risks[0]
        assert start["kubernetes"]["pod_uid"] == "94eb36cd-29e1-478b-b365-4cb5dfc7d6fb"
        assert start["advice"], "advised like every event"
        metrics = h.agent.metrics.render().decode()
        assert "kernbot_agent_oom_risk_cgroups 2.0" in metrics
        assert "kernbot_agent_oom_risk_open 1.0" in metrics

        h.sources.current.push(MEMCG_OOM)
        for _ in range(500):
            kills = [b for b in h.outbox.puts if b["kind"] == "oom_kill"]
            if kills:
                break
            await asyncio.sleep(0.01)
        h.agent.pipeline.flush()
        kills = [b for b in h.outbox.puts if b["kind"] == "oom_kill"]
        assert kills and all(k["risk_id"] == start["id"] for k in kills)
        ended = [b for b in h.outbox.puts if b["kind"] == "oom_risk"][-1]
        assert ended["id"] == start["id"] and ended["state"] == "killed"
        assert ended["kill_id"] == kills[0]["id"]
        assert ended["revision"] == start["revision"] + 1
    finally:
        await h.agent.stop()


def test_the_harness_never_reads_this_hosts_cgroups(tmp_path: Path) -> None:
    h = make_agent(tmp_path)
    assert h.agent.risk is not None and h.agent.risk.reader.version is None


def test_sampling_off_means_no_sampler(tmp_path: Path) -> None:
    h = make_agent(tmp_path, risk_sample_interval_s=0)
    assert h.agent.risk is None and all(name != "oom-risk" for _, name, _ in h.agent.jobs)
