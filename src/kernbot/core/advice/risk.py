"""Advice for an `oom_risk` episode: act before the kernel does.

Three things an SRE would do with minutes to spare: raise the limit to what the trend needs (the
working set in an hour at the fitted growth, or 1.25x it when flat, rounded up to 64 MiB), make the
cgroup throttle instead of die (cgroup v2 memory.high below memory.max), and look at the process
that grows. Commands are copy-pasted by people, so kernel-sourced names go through `q`.
"""

from __future__ import annotations

from kernbot.core.advice.parts import MIB, mib, q
from kernbot.core.events import Advice, OomRiskEvent

HORIZON_S = 3600.0
"""A raised limit should hold the trend this long."""
STEP_KB = 64 * MIB


def needed_limit_kb(ev: OomRiskEvent) -> int | None:
    """The limit the trend needs for an hour, rounded up to 64 MiB; None without numbers."""
    if ev.working_set_kb is None or ev.limit_kb is None:
        return None
    growth = max(ev.growth_kb_per_s or 0.0, 0.0)
    target = max(ev.working_set_kb + growth * HORIZON_S, ev.working_set_kb * 1.25)
    target = max(target, ev.limit_kb + STEP_KB)
    return int(-(-target // STEP_KB) * STEP_KB)


def _raise_commands(ev: OomRiskEvent, new_kb: int) -> list[str]:
    new_mib = new_kb // MIB
    k8s, ct = ev.kubernetes, ev.container
    if k8s is not None and k8s.namespace and k8s.pod:
        return [
            f"kubectl -n {q(k8s.namespace)} get pod {q(k8s.pod)} -o jsonpath="
            "'{.spec.containers[*].resources}'",
            f"# set resources.limits.memory: {new_mib}Mi on the workload that owns the pod",
        ]
    if ct is not None and ct.kind == "container" and ct.container_id and ct.runtime == "docker":
        cid = ct.container_id[:12]
        return [f"docker update --memory {new_mib}m --memory-swap {new_mib}m {cid}"]
    if ct is not None and ct.kind == "container" and ct.container_id and ct.runtime == "podman":
        return [f"podman update --memory {new_mib}m {ct.container_id[:12]}"]
    if ct is not None and ct.kind == "systemd-unit" and ct.unit:
        return [f"systemctl set-property {q(ct.unit)} MemoryMax={new_mib}M"]
    path = ev.cgroup.strip("/")
    if ev.cgroup_version == 2:
        return [f"echo {new_kb * 1024} > {q('/sys/fs/cgroup/' + path + '/memory.max')}"]
    return [
        f"echo {new_kb * 1024} > {q('/sys/fs/cgroup/memory/' + path + '/memory.limit_in_bytes')}"
    ]


def advise_risk(ev: OomRiskEvent) -> list[Advice]:
    out: list[Advice] = []
    if ev.state in ("ended", "killed"):
        return out
    if ev.cgroup == "/":
        top = ev.top[0] if ev.top else None
        why = "The host is running out of memory; the kernel's OOM killer is next."
        if top is not None:
            why += f" The largest process is {top.comm or '?'} (pid {top.pid})."
        out.append(
            Advice(
                title="Free memory on the host before the OOM killer does",
                why=why,
                commands=["ps -eo pid,rss,comm --sort=-rss | head", "cat /proc/pressure/memory"],
                severity="critical",
            )
        )
        return out
    new_kb = needed_limit_kb(ev)
    if new_kb is not None and ev.limit_kb is not None:
        trend = (
            f" At +{mib(int(ev.growth_kb_per_s * 60))}/min it needs about {mib(new_kb)} for "
            "the next hour."
            if ev.growth_kb_per_s and ev.growth_kb_per_s > 0
            else f" {mib(new_kb)} leaves a quarter of headroom."
        )
        out.append(
            Advice(
                title=f"Raise the limit to {mib(new_kb)}",
                why=f"The working set is {mib(ev.working_set_kb or 0)} of a "
                f"{mib(ev.limit_kb)} limit.{trend}",
                commands=_raise_commands(ev, new_kb),
                severity="critical" if ev.eta_s is not None and ev.eta_s < 300 else "warning",
            )
        )
    if ev.cgroup_version == 2 and ev.high_kb is None and ev.limit_kb:
        high = ev.limit_kb * 9 // 10 * 1024
        path = q("/sys/fs/cgroup/" + ev.cgroup.strip("/") + "/memory.high")
        out.append(
            Advice(
                title="Throttle instead of dying: set memory.high",
                why="With memory.high below memory.max the kernel reclaims and slows the cgroup "
                "down near its limit instead of killing a process at it.",
                commands=[f"echo {high} > {path}"],
                severity="info",
            )
        )
    out += _process_advice(ev)
    return out


def _process_advice(ev: OomRiskEvent) -> list[Advice]:
    """The process that grows (known from the episode's second event on), else the largest."""
    growing = [p for p in ev.top if p.growth_kb_per_s is not None and p.growth_kb_per_s > 0]
    if growing:
        p = max(growing, key=lambda t: t.growth_kb_per_s or 0.0)
        title = f"{p.comm or '?'} (pid {p.pid}) is the process that grows"
        why = (
            f"It holds {mib(p.rss_kb or 0)} and grew {mib(int((p.growth_kb_per_s or 0) * 60))}"
            "/min since the last update: a leak or an unbounded cache is the usual cause."
        )
    elif ev.top:
        p = ev.top[0]
        title = f"Look at {p.comm or '?'} (pid {p.pid}), the largest process"
        why = (
            f"It holds {mib(p.rss_kb or 0)} of the cgroup's memory; if it keeps growing, it "
            "leaks or caches without bound."
        )
    else:
        return []
    return [
        Advice(
            title=title,
            why=why,
            commands=[f"grep -E 'Rss|Anon|Swap' /proc/{p.pid}/smaps_rollup"],
            severity="info",
        )
    ]
