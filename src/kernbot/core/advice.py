"""What a senior SRE would tell you to do next, computed from an event's own numbers.

Pure rules: the event (and, when the agent has it, live host context) in, a list of `Advice`
out. Commands are meant to be copy-pasted, so every value that came from kernel text (a comm, a
cgroup path, a unit name) is shell-quoted: a process may be named `$(reboot)`.

Context keys read here (all optional; the agent fills them, `kernbot scan` has none):

* `kills_24h` (int): OOM kills on this host (same cgroup when known) in the last 24 hours.
* `counter_rates` (dict[str, float]): TcpExt counter rates per second, keyed by the
  /proc/net/netstat name: `SyncookiesSent`, `SyncookiesRecv`, `SyncookiesFailed`,
  `ListenOverflows`, `ListenDrops`, `TCPReqQFullDoCookies`, `TCPReqQFullDrop`.
* `sysctls` (dict[str, str|int]): e.g. `net.core.somaxconn`, `net.ipv4.tcp_max_syn_backlog`,
  `net.ipv4.tcp_syncookies`, `vm.overcommit_memory`, `vm.panic_on_oom`.
* `listener` (dict, wire.Listener): the socket that flooded: `comm`, `pid`, `backlog` (Send-Q of
  `ss -ltn`), `accept_queue` (Recv-Q), `syn_recv` (half-open connections).
* `verdict` (str): the agent's reading of the counters: `attack` (spoofed SYNs), `legitimate`
  (real clients, backlog too small) or `unknown`. Without it, the cookie return ratio in
  `counter_rates` decides the same way.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from kernbot.core.events import Advice, Event, OomKillEvent, SynFloodEvent, Task

_UNIT_RE = re.compile(r"/([^/]+\.(?:service|scope|slice))$")
_LXC_RE = re.compile(r"^/lxc(?:\.payload)?[./]([^/]+)")
_DOCKER_RE = re.compile(r"(?:/docker/|docker-)([0-9a-f]{64})(?:\.scope)?$")
_MIB = 1024
SPOOFED_MAX_RETURN = 0.1
"""Fewer than this share of SYN cookies coming back: the SYNs are spoofed (an attack)."""
REAL_MIN_RETURN = 0.5
"""At least this share coming back: real clients complete handshakes; the backlog is too small."""


def _q(value: object) -> str:
    return shlex.quote(str(value))


def _mib(kb: int) -> str:
    return f"{kb / _MIB:,.0f} MiB" if kb >= _MIB else f"{kb} kB"


def _raised_limit_mib(limit_kb: int) -> int:
    """1.5x the old limit, rounded up to a multiple of 64 MiB (at least 64 MiB more)."""
    target = limit_kb * 3 // 2
    step = 64 * _MIB
    return max(-(-target // step) * step, limit_kb + step) // _MIB


def advise(event: Event, context: Mapping[str, Any] | None = None) -> list[Advice]:
    """Advice for one event; `context` defaults to the event's own `context` dict."""
    ctx: Mapping[str, Any] = context if context is not None else event.context
    if isinstance(event, OomKillEvent):
        return _advise_oom(event, ctx)
    if isinstance(event, SynFloodEvent):
        return _advise_syn(event, ctx)
    return []


# ---------------------------------------------------------------- OOM


def _advise_oom(ev: OomKillEvent, ctx: Mapping[str, Any]) -> list[Advice]:
    out: list[Advice] = []
    if ev.panic:
        out.append(_panic_advice(ev))
    memcg_oom = not ev.global_oom and (
        ev.constraint == "CONSTRAINT_MEMCG" or (ev.memcg is not None and bool(ev.memcg.oom_path))
    )
    if memcg_oom:
        out.extend(_memcg_advice(ev))
    elif ev.global_oom or ev.constraint is not None or ev.meminfo is not None:
        out.extend(_global_advice(ev))
    elif not ev.panic:
        out.extend(_fragment_advice(ev))
    adj = _adj_advice(ev)
    if adj is not None:
        out.append(adj)
    kills = _int(ctx.get("kills_24h"))
    if kills is not None and kills >= 3:
        out.append(_leak_advice(ev, kills))
    return out


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _victim_name(ev: OomKillEvent) -> str:
    v = ev.victim
    return f"{v.comm or '?'} (pid {v.pid if v.pid is not None else '?'})"


def _panic_advice(ev: OomKillEvent) -> Advice:
    return Advice(
        title="The host panicked instead of killing a process (panic_on_oom)",
        why=(
            "vm.panic_on_oom is set, so the kernel crashed (and, with kernel.panic set, rebooted) "
            "rather than kill one process. Every service on the host went down. Unless a "
            "cluster relies on the node dying, let the OOM killer pick a victim instead."
        ),
        commands=[
            "sysctl vm.panic_on_oom kernel.panic",
            "sysctl -w vm.panic_on_oom=0",
            "echo 'vm.panic_on_oom = 0' > /etc/sysctl.d/90-oom.conf",
            "journalctl -k -b -1 | grep -iE 'out of memory|invoked oom-killer'",
        ],
        severity="critical",
    )


def _usage_text(ev: OomKillEvent) -> str:
    m = ev.memcg
    if m is None or m.usage_kb is None:
        return ""
    if m.limit_kb is None:
        return f" Usage was {_mib(m.usage_kb)} with no memory limit set on that cgroup."
    return f" Usage was {_mib(m.usage_kb)} of a {_mib(m.limit_kb)} limit."


def _memcg_advice(ev: OomKillEvent) -> list[Advice]:
    m = ev.memcg
    oom_path = (m.oom_path if m else None) or (m.task_path if m else None) or "?"
    limit_kb = m.limit_kb if m else None
    new_mib = _raised_limit_mib(limit_kb) if limit_kb else None
    usage = _usage_text(ev)
    k8s = ev.kubernetes
    if k8s is not None:
        return _k8s_advice(ev, usage, new_mib)
    docker = _DOCKER_RE.search(oom_path)
    lxc = _LXC_RE.match(oom_path)
    if docker is None and lxc is not None:
        ct = lxc.group(1)
        cmds = [f"pct config {_q(ct)} | grep -i memory   # Proxmox"]
        if new_mib:
            cmds += [
                f"pct set {_q(ct)} --memory {new_mib}   # Proxmox",
                f"lxc config set {_q(ct)} limits.memory {new_mib}MiB   # LXD/Incus",
            ]
        return [
            Advice(
                title=f"LXC container {ct} hit its memory limit",
                why=f"{_victim_name(ev)} was killed by the memory limit of LXC container {ct}"
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
                why=f"{_victim_name(ev)} was killed inside docker container {cid}.{usage} "
                "Raise the limit (docker run --memory / compose mem_limit) or find what grew.",
                commands=cmds,
                severity="critical",
            )
        ]
    unit = _UNIT_RE.search(oom_path)
    if unit is not None:
        name = unit.group(1)
        cmds = [
            f"systemctl show {_q(name)} -p MemoryMax -p MemoryHigh -p MemoryCurrent -p MemoryPeak"
        ]
        if new_mib:
            cmds.append(f"systemctl set-property {_q(name)} MemoryMax={new_mib}M")
        cmds.append(f"systemd-cgtop -m {_q(oom_path.lstrip('/'))}")
        return [
            Advice(
                title=f"{name} hit its memory limit",
                why=f"{_victim_name(ev)} was killed by the memory cgroup {oom_path}.{usage} "
                "Raise MemoryMax for the unit or find out why it grew.",
                commands=cmds,
                severity="critical",
            )
        ]
    cg = _q(f"/sys/fs/cgroup{oom_path}")
    return [
        Advice(
            title=f"Cgroup {oom_path} hit its memory limit",
            why=f"{_victim_name(ev)} was killed by the memory cgroup {oom_path}.{usage} "
            "Raise that cgroup's limit or find what grew inside it.",
            commands=[
                f"cat {cg}/memory.max {cg}/memory.events 2>/dev/null || "
                f"cat /sys/fs/cgroup/memory{_q(oom_path)}/memory.limit_in_bytes",
                f"systemd-cgls {_q(oom_path)}",
            ],
            severity="critical",
        )
    ]


def _k8s_advice(ev: OomKillEvent, usage: str, new_mib: int | None) -> list[Advice]:
    k8s = ev.kubernetes
    assert k8s is not None
    out: list[Advice] = []
    if k8s.pod and k8s.namespace:
        ns, pod = _q(k8s.namespace), _q(k8s.pod)
        c = f" -c {_q(k8s.container)}" if k8s.container else ""
        who = f"pod {k8s.namespace}/{k8s.pod}" + (
            f" container {k8s.container}" if k8s.container else ""
        )
        find = [
            f"kubectl -n {ns} describe pod {pod}",
            f"kubectl -n {ns} get pod {pod} -o jsonpath="
            "'{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}'",
        ]
        raise_cmd = (
            f"kubectl -n {ns} set resources deployment/<owner>{c or ' -c <container>'} "
            f"--limits=memory={new_mib}Mi"
            if new_mib
            else None
        )
        leak = [
            f"kubectl -n {ns} top pod {pod} --containers",
            f"kubectl -n {ns} logs {pod}{c} --previous",
        ]
    else:
        uid = k8s.pod_uid or "?"
        who = f"pod uid {uid}"
        find = [
            "kubectl get pods -A -o custom-columns=NS:.metadata.namespace,POD:.metadata.name,"
            f"UID:.metadata.uid | grep {_q(uid)}"
        ]
        raise_cmd = (
            f"kubectl -n <namespace> set resources deployment/<owner> -c <container> "
            f"--limits=memory={new_mib}Mi"
            if new_mib
            else None
        )
        leak = ["kubectl top pod -A --containers --sort-by=memory | head -20"]
    qos = f" (QoS {k8s.qos})" if k8s.qos else ""
    out.append(
        Advice(
            title=f"Raise the memory limit of {who}" + (f" to {new_mib}Mi" if new_mib else ""),
            why=f"{_victim_name(ev)} was killed by the container's own memory limit{qos}, not "
            f"because the node ran out.{usage} If this is normal peak usage, the limit is too low"
            + (f"; about 1.5x would be {new_mib}Mi." if new_mib else "."),
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


def _fragment_advice(ev: OomKillEvent) -> list[Advice]:
    """Only the kill line survived (grep output, a truncated paste): say what to look for."""
    text = "\n".join(ev.lines)
    if "Memory cgroup out of memory" in text:
        scope = "The kill line says a memory cgroup (container) limit was hit"
    elif "Out of memory" in text:
        scope = "The kill line says the host (or a cpuset/NUMA policy) ran out of memory"
    else:
        scope = "Only part of the report is here, so whether a cgroup limit or the host ran out"
        scope += " is not known"
    pid = ev.victim.pid if ev.victim.pid is not None else ""
    return [
        Advice(
            title="Read the whole OOM report",
            why=f"{scope}. The full report (printed just before the kill line) names the cgroup "
            "and its limit, the trigger and every candidate's memory.",
            commands=[
                f"journalctl -k | grep -B 60 -A 2 'Killed process {pid}'",
                "dmesg -T | grep -iE 'invoked oom-killer|oom-kill:|Killed process|Task in'",
            ],
            severity="warning",
        )
    ]


def _top_tasks(ev: OomKillEvent, n: int = 3) -> list[Task]:
    return sorted((t for t in ev.tasks if t.rss_kb), key=lambda t: t.rss_kb or 0, reverse=True)[:n]


def _global_advice(ev: OomKillEvent) -> list[Advice]:
    out: list[Advice] = []
    top = _top_tasks(ev)
    if top:
        names = ", ".join(f"{t.name} (pid {t.pid}, {_mib(t.rss_kb or 0)})" for t in top)
        why = f"The whole host ran out of memory. Biggest processes at the time: {names}."
    else:
        why = "The whole host ran out of memory (RAM and swap); this is not a container limit."
    mi = ev.meminfo
    if mi is not None and mi.total_ram_kb:
        why += f" RAM: {_mib(mi.total_ram_kb)}"
        if mi.total_swap_kb is not None:
            why += f", swap: {_mib(mi.total_swap_kb)}"
        why += "."
    out.append(
        Advice(
            title="The host ran out of memory: see who is using it",
            why=why,
            commands=[
                "ps -eo pid,comm,rss,oom_score,oom_score_adj --sort=-rss | head -15",
                "free -m",
                "sysctl vm.overcommit_memory vm.overcommit_ratio",
            ],
            severity="critical",
        )
    )
    if mi is not None and mi.total_swap_kb == 0:
        out.append(
            Advice(
                title="There is no swap",
                why="Without swap every anonymous page must stay in RAM, so a short spike kills "
                "a process. A little swap (or zram) gives the kernel room to reclaim.",
                commands=[
                    "swapon --show",
                    "fallocate -l 2G /swapfile && chmod 600 /swapfile "
                    "&& mkswap /swapfile && swapon /swapfile",
                ],
                severity="warning",
            )
        )
    out.append(
        Advice(
            title="Protect the services that must survive",
            why="The kernel kills the process with the highest oom_score. Lower the score of "
            "critical daemons (sshd, databases, the kubelet) so a runaway job goes first; a "
            "process can only raise its own oom_score_adj, root with CAP_SYS_RESOURCE lowers it.",
            commands=[
                "systemctl edit <service>   # [Service] OOMScoreAdjust=-500",
                "echo -500 > /proc/<pid>/oom_score_adj",
            ],
            severity="info",
        )
    )
    return out


def _adj_advice(ev: OomKillEvent) -> Advice | None:
    adj = ev.victim.oom_score_adj
    if adj is None or adj < 500:
        return None
    victim_rss = (
        (ev.victim.anon_rss_kb or 0) + (ev.victim.file_rss_kb or 0) + (ev.victim.shmem_rss_kb or 0)
    )
    bigger = [
        t for t in _top_tasks(ev, 1) if t.pid != ev.victim.pid and (t.rss_kb or 0) > victim_rss
    ]
    why = f"{_victim_name(ev)} had oom_score_adj {adj}, which pushed its oom_score up"
    if bigger:
        b = bigger[0]
        why += (
            f": it was chosen over {b.name} (pid {b.pid}), which used more memory "
            f"({_mib(b.rss_kb or 0)} against {_mib(victim_rss)})"
        )
    why += "."
    if adj == 1000:
        why += " 1000 means 'kill me first' (Kubernetes gives it to BestEffort pods)."
    elif ev.kubernetes is not None:
        why += " Kubernetes sets a high adj for Burstable pods that request little memory."
    return Advice(
        title=f"Chosen because of oom_score_adj {adj}" + (", not size" if bigger else ""),
        why=why,
        commands=["ps -eo pid,comm,rss,oom_score,oom_score_adj --sort=-oom_score | head"],
        severity="info",
    )


def _leak_advice(ev: OomKillEvent, kills: int) -> Advice:
    return Advice(
        title=f"{kills} OOM kills in 24 hours: probably a leak",
        why=f"{_victim_name(ev)} is one of {kills} kills in a day. A limit that is only "
        "slightly low gives the odd kill; this many means memory grows without bound.",
        commands=["journalctl -k --since -24h | grep -E 'Killed process|oom-kill:'"],
        severity="critical",
    )


# ---------------------------------------------------------------- SYN flood


def _rate(ctx: Mapping[str, Any], key: str) -> float | None:
    rates = ctx.get("counter_rates")
    if not isinstance(rates, Mapping):
        return None
    val = rates.get(key)
    if isinstance(val, bool) or not isinstance(val, int | float):
        return None
    return float(val)


def _listen_spec(ev: SynFloodEvent) -> str:
    if ev.addr and ev.family == "ipv6":
        return f"[{ev.addr}]:{ev.port}"
    if ev.addr:
        return f"{ev.addr}:{ev.port}"
    return f"port {ev.port}"


def _advise_syn(ev: SynFloodEvent, ctx: Mapping[str, Any]) -> list[Advice]:
    out: list[Advice] = []
    port = ev.port if ev.port is not None else "<port>"
    where = _listen_spec(ev)
    if ev.action == "drop":
        out.append(
            Advice(
                title="SYN cookies are off: the kernel is dropping connection attempts",
                why=f"The SYN queue of {where} is full and net.ipv4.tcp_syncookies is 0, so new "
                "clients (real ones too) are turned away. Turn SYN cookies on.",
                commands=[
                    "sysctl -w net.ipv4.tcp_syncookies=1",
                    "echo 'net.ipv4.tcp_syncookies = 1' > /etc/sysctl.d/90-syncookies.conf",
                ],
                severity="critical",
            )
        )
    sent = _rate(ctx, "SyncookiesSent")
    recv = _rate(ctx, "SyncookiesRecv")
    verdict = ctx.get("verdict")
    if verdict is None and sent is not None and recv is not None and sent >= 1:
        if recv < SPOOFED_MAX_RETURN * sent:
            verdict = "attack"
        elif recv >= REAL_MIN_RETURN * sent:
            verdict = "legitimate"
    counters = (
        f" Cookies sent {sent:.0f}/s, received back {recv:.0f}/s."
        if sent is not None and recv is not None
        else ""
    )
    check = Advice(
        title="Are real clients completing handshakes?",
        why="Compare SYN cookies sent with cookies received back: few received means spoofed "
        "SYNs (an attack); most received means real clients and a listen backlog too small.",
        commands=[
            "nstat -az TcpExtSyncookiesSent TcpExtSyncookiesRecv TcpExtSyncookiesFailed "
            "TcpExtListenOverflows TcpExtListenDrops",
            f"ss -ltnp 'sport = :{port}'",
        ],
        severity="info",
    )
    firewall = Advice(
        title=f"Rate-limit SYNs to port {port} upstream",
        why="Most cookies never come back, so the SYNs are spoofed: filter them before they reach "
        "the socket (load balancer, cloud firewall, or SYNPROXY on this host)." + counters,
        commands=[
            f"iptables -I INPUT -p tcp --syn --dport {port} -m hashlimit "
            f"--hashlimit-name syn{port} --hashlimit-mode srcip --hashlimit-above 50/second "
            "--hashlimit-burst 100 -j DROP",
            f"nft add rule inet filter input 'tcp dport {port} tcp flags syn "
            "meter synflood { ip saddr limit rate over 50/second burst 100 packets } drop'",
            f"iptables -t raw -I PREROUTING -p tcp --syn --dport {port} -j CT --notrack",
            f"iptables -I INPUT -p tcp --dport {port} -m conntrack --ctstate INVALID,UNTRACKED "
            "-j SYNPROXY --sack-perm --timestamp --wscale 7 --mss 1460",
            "sysctl -w net.netfilter.nf_conntrack_tcp_loose=0",
        ],
        severity="critical" if verdict == "attack" else "warning",
    )
    listener = ctx.get("listener")
    lwho = ""
    if isinstance(listener, Mapping) and listener.get("comm"):
        lwho = f" ({listener.get('comm')}, pid {listener.get('pid', '?')})"
        backlog_now = _int(listener.get("backlog"))
        if backlog_now is not None:
            queue = _int(listener.get("accept_queue"))
            lwho += f", listen backlog {backlog_now}"
            lwho += f" with {queue} waiting to be accepted" if queue is not None else ""
        half_open = _int(listener.get("syn_recv"))
        if half_open is not None:
            lwho += f", {half_open} half-open"
    sysctls = ctx.get("sysctls")
    now = ""
    if isinstance(sysctls, Mapping):
        parts = [
            f"{k} = {sysctls[k]}"
            for k in ("net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog")
            if k in sysctls
        ]
        now = (" Now: " + ", ".join(parts) + ".") if parts else ""
    backlog = Advice(
        title=f"Give {where} a bigger backlog",
        why=f"Real clients are filling the SYN/accept queue of the listener{lwho}: raise the "
        "kernel limits and the backlog the application passes to listen() (nginx "
        "`listen … backlog=`, Java `backlog`, gunicorn `--backlog`)." + now + counters,
        commands=[
            "sysctl net.core.somaxconn net.ipv4.tcp_max_syn_backlog",
            "sysctl -w net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=8192",
            "printf 'net.core.somaxconn = 4096\\nnet.ipv4.tcp_max_syn_backlog = 8192\\n' "
            "> /etc/sysctl.d/90-backlog.conf",
        ],
        severity="critical" if verdict == "legitimate" else "warning",
    )
    if verdict == "attack":
        out += [firewall, check]
    elif verdict == "legitimate":
        out += [backlog, check]
    else:
        out += [check, firewall, backlog]
    if ev.action == "cookies":
        out.append(
            Advice(
                title="SYN cookies drop TCP options",
                why="Connections accepted through a cookie lose window scaling (and SACK/"
                "timestamps unless tcp_timestamps is on), so they can be slow on long links. "
                "Fine during an attack; a sign to fix the backlog if real clients trigger it.",
                commands=["sysctl net.ipv4.tcp_syncookies net.ipv4.tcp_timestamps"],
                severity="info",
            )
        )
    return out
