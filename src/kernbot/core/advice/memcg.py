"""Advice for an OOM kill inside a memory cgroup: whose limit it was and how to raise it.

The limit belongs to the cgroup the kernel names as `oom_memcg`: a Kubernetes pod or container,
a docker container, an LXC container, a systemd unit, or a bare cgroup. Each gets the commands of
the tool that owns that limit, with the new value worked out (1.5x, rounded up to 64 MiB).
"""

from __future__ import annotations

import re

from kernbot.core.advice.parts import q, raised_limit_mib, usage_text, victim_name
from kernbot.core.events import Advice, OomKillEvent

_UNIT_RE = re.compile(r"/([^/]+\.(?:service|scope|slice))$")
_LXC_RE = re.compile(r"^/lxc(?:\.payload)?[./]([^/]+)")
_DOCKER_RE = re.compile(r"(?:/docker/|docker-)([0-9a-f]{64})(?:\.scope)?$")


def memcg_advice(ev: OomKillEvent) -> list[Advice]:
    m = ev.memcg
    oom_path = (m.oom_path if m else None) or (m.task_path if m else None)
    limit_kb = m.limit_kb if m else None
    new_mib = raised_limit_mib(limit_kb) if limit_kb else None
    usage = usage_text(ev)
    k8s = ev.kubernetes
    if k8s is not None:
        return _k8s_advice(ev, usage, new_mib)
    if oom_path is None:
        return [_unknown_cgroup_advice(ev)]
    docker = _DOCKER_RE.search(oom_path)
    lxc = _LXC_RE.match(oom_path)
    if docker is None and lxc is not None:
        ct = lxc.group(1)
        cmds = [f"pct config {q(ct)} | grep -i memory   # Proxmox"]
        if new_mib:
            cmds += [
                f"pct set {q(ct)} --memory {new_mib}   # Proxmox",
                f"lxc config set {q(ct)} limits.memory {new_mib}MiB   # LXD/Incus",
            ]
        return [
            Advice(
                title=f"LXC container {ct} hit its memory limit",
                why=f"{victim_name(ev)} was killed by the memory limit of LXC container {ct}"
                f" ({oom_path}).{usage} Everything inside that container shares the limit: "
                "raise it or find what grew inside.",
                commands=cmds,
                severity="critical",
            )
        ]
    if docker is not None:
        cid = docker.group(1)[:12]
        cmds = [
            f"docker stats --no-stream {cid}",
            f"docker inspect -f '{{{{.HostConfig.Memory}}}}' {cid}",
        ]
        if new_mib:
            cmds.append(f"docker update --memory {new_mib}m --memory-swap {new_mib}m {cid}")
        return [
            Advice(
                title=f"Container {cid} hit its memory limit",
                why=f"{victim_name(ev)} was killed inside docker container {cid}.{usage} "
                "Raise the limit (docker run --memory / compose mem_limit) or find what grew.",
                commands=cmds,
                severity="critical",
            )
        ]
    unit = _UNIT_RE.search(oom_path)
    if unit is not None:
        name = unit.group(1)
        cmds = [
            f"systemctl show {q(name)} -p MemoryMax -p MemoryHigh -p MemoryCurrent -p MemoryPeak"
        ]
        if new_mib:
            cmds.append(f"systemctl set-property {q(name)} MemoryMax={new_mib}M")
        cmds.append(f"systemd-cgtop -m {q(oom_path.lstrip('/'))}")
        return [
            Advice(
                title=f"{name} hit its memory limit",
                why=f"{victim_name(ev)} was killed by the memory cgroup {oom_path}.{usage} "
                "Raise MemoryMax for the unit or find out why it grew.",
                commands=cmds,
                severity="critical",
            )
        ]
    cg = q(f"/sys/fs/cgroup{oom_path}")
    return [
        Advice(
            title=f"Cgroup {oom_path} hit its memory limit",
            why=f"{victim_name(ev)} was killed by the memory cgroup {oom_path}.{usage} "
            "Raise that cgroup's limit or find what grew inside it.",
            commands=[
                f"cat {cg}/memory.max {cg}/memory.events 2>/dev/null || "
                f"cat /sys/fs/cgroup/memory{q(oom_path)}/memory.limit_in_bytes",
                f"systemd-cgls {q(oom_path)}",
            ],
            severity="critical",
        )
    ]


def _unknown_cgroup_advice(ev: OomKillEvent) -> Advice:
    """A memory cgroup OOM whose cgroup line is not in the text: find the report first."""
    grep = f"Killed process {ev.victim.pid}" if ev.victim.pid is not None else "Memory cgroup"
    return Advice(
        title="Find which memory cgroup hit its limit",
        why=f"{victim_name(ev)} was killed by a memory cgroup's limit, but the line naming the "
        "cgroup is not in this part of the log. The full report names it and its limit.",
        commands=[
            f"journalctl -k | grep -B 60 -A 2 {q(grep)}",
            "dmesg -T | grep -E 'Memory cgroup out of memory|oom-kill:|Task in'",
        ],
        severity="critical",
    )


def _k8s_advice(ev: OomKillEvent, usage: str, new_mib: int | None) -> list[Advice]:
    k8s = ev.kubernetes
    assert k8s is not None
    out: list[Advice] = []
    if k8s.pod and k8s.namespace:
        ns, pod = q(k8s.namespace), q(k8s.pod)
        c = f" -c {q(k8s.container)}" if k8s.container else ""
        who = f"pod {k8s.namespace}/{k8s.pod}" + (
            f" container {k8s.container}" if k8s.container else ""
        )
        find = [
            f"kubectl -n {ns} describe pod {pod}",
            f"kubectl -n {ns} get pod {pod} -o jsonpath="
            "'{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}'",
        ]
        raise_cmd = None  # the owner (usually a Deployment) is named by the command above
        leak = [
            f"kubectl -n {ns} top pod {pod} --containers",
            f"kubectl -n {ns} logs {pod}{c} --previous",
        ]
    else:
        uid = k8s.pod_uid
        who = f"pod uid {uid}" if uid else "the pod"
        find = (
            [
                "kubectl get pods -A -o custom-columns=NS:.metadata.namespace,"
                f"POD:.metadata.name,UID:.metadata.uid | grep {q(uid)}"
            ]
            if uid
            else []
        )
        raise_cmd = None  # namespace and owner unknown until the command above names the pod
        leak = ["kubectl top pod -A --containers --sort-by=memory | head -20"]
    qos = f" (QoS {k8s.qos})" if k8s.qos else ""
    out.append(
        Advice(
            title=f"Raise the memory limit of {who}" + (f" to {new_mib}Mi" if new_mib else ""),
            why=f"{victim_name(ev)} was killed by the container's own memory limit{qos}, not "
            f"because the node ran out.{usage} If this is normal peak usage, the limit is too low"
            + (f"; about 1.5x would be {new_mib}Mi." if new_mib else ".")
            + (
                " Raise it in the workload that owns the pod (the last command names it): "
                f"`kubectl -n {q(k8s.namespace)} set resources KIND/NAME"
                f"{' -c ' + q(k8s.container) if k8s.container else ''}"
                f" --limits=memory={new_mib}Mi`."
                if new_mib and k8s.namespace and k8s.pod
                else ""
            ),
            commands=find + ([raise_cmd] if raise_cmd else []),
            severity="critical",
        )
    )
    out.append(
        Advice(
            title="Or find the leak",
            why="If usage keeps climbing to any limit you give it, the process leaks memory: "
            "watch it grow and read the logs of the killed instance.",
            commands=leak,
            severity="warning",
        )
    )
    return out
