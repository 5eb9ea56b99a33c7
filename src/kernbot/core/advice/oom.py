"""Advice for an OOM kill: the memory cgroup's limit, a host out of memory, panic_on_oom, a
victim picked for its oom_score_adj rather than its size, and kills that keep coming back."""

from __future__ import annotations

from kernbot.core.advice.diagnosis import NOT_THE_LIMIT, diagnosis_advice
from kernbot.core.advice.memcg import memcg_advice
from kernbot.core.advice.parts import mib, victim_name
from kernbot.core.context import Recurrence
from kernbot.core.events import Advice, OomKillEvent, Task

LEAK_KILLS_24H = 3
"""This many kills in a day is a pattern, not bad luck."""


def advise_oom(ev: OomKillEvent) -> list[Advice]:
    """Which limit was hit decides the first advice; the victim's adj and repeats add to it."""
    out: list[Advice] = []
    if ev.panic:
        out.append(_panic_advice(ev))
    memcg_oom = not ev.global_oom and (
        ev.constraint == "CONSTRAINT_MEMCG" or (ev.memcg is not None and bool(ev.memcg.oom_path))
    )
    causes = diagnosis_advice(ev)
    first = ev.diagnosis[1 if memcg_oom else 0 :][:1]
    # Raising a limit frees neither tmpfs files nor a kernel leak, and on a host the cause is
    # what to fix: the cause's advice leads, except a process that filled its own cgroup,
    # where the limit advice (raise it or find the leak) comes first.
    lead = bool(first) and first[0].cause in NOT_THE_LIMIT
    if not memcg_oom or lead:
        out.extend(causes)
        causes = []
    share = first[0].evidence.get("share") if first else None
    dominant = lead and isinstance(share, float | int) and share >= 0.5
    if memcg_oom:
        # When shmem or kernel memory holds most of the limit, more limit only delays the next
        # kill: the limit advice is left out rather than contradict the cause's.
        out.extend([] if dominant else memcg_advice(ev))
    elif ev.global_oom or ev.constraint is not None or ev.meminfo is not None:
        out.extend(_global_advice(ev))
    elif not ev.panic:
        out.extend(_fragment_advice(ev))
    out.extend(causes)
    adj = _adj_advice(ev)
    if adj is not None:
        out.append(adj)
    again = ev.context.recurrence
    kills = ev.context.kills_24h
    if again is not None:
        out.insert(0, _recurrence_advice(ev, again))
    elif kills is not None and kills >= LEAK_KILLS_24H:
        out.append(_leak_advice(ev, kills))
    return out


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
        names = ", ".join(f"{t.name} (pid {t.pid}, {mib(t.rss_kb or 0)})" for t in top)
        why = f"The whole host ran out of memory. Biggest processes at the time: {names}."
    else:
        why = "The whole host ran out of memory (RAM and swap); this is not a container limit."
    mi = ev.meminfo
    if mi is not None and mi.total_ram_kb:
        why += f" RAM: {mib(mi.total_ram_kb)}"
        if mi.total_swap_kb is not None:
            why += f", swap: {mib(mi.total_swap_kb)}"
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
    if mi is not None and mi.total_swap_kb == 0 and not _has(ev, "swap_exhausted"):
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
            "critical daemons (sshd, databases, the kubelet) so a runaway job goes first: "
            "OOMScoreAdjust=-500 in the unit's [Service] section (`systemctl edit UNIT`), or "
            "-500 written to /proc/PID/oom_score_adj; a process can only raise its own "
            "oom_score_adj, root with CAP_SYS_RESOURCE lowers it. The command lists who would "
            "go first now.",
            commands=[
                "ps -eo pid,comm,rss,oom_score,oom_score_adj --sort=-oom_score | head",
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
    why = f"{victim_name(ev)} had oom_score_adj {adj}, which pushed its oom_score up"
    if bigger:
        b = bigger[0]
        why += (
            f": it was chosen over {b.name} (pid {b.pid}), which used more memory "
            f"({mib(b.rss_kb or 0)} against {mib(victim_rss)})"
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
        why=f"{victim_name(ev)} is one of {kills} kills in a day. A limit that is only "
        "slightly low gives the odd kill; this many means memory grows without bound.",
        commands=["journalctl -k --since -24h | grep -E 'Killed process|oom-kill:'"],
        severity="critical",
    )


def _has(ev: OomKillEvent, cause: str) -> bool:
    return any(f.cause == cause for f in ev.diagnosis)


def _recurrence_advice(ev: OomKillEvent, again: Recurrence) -> Advice:
    """The same cgroup or pod killed at the same usage on a schedule (agent or bot history)."""
    return Advice(
        title=f"It {again.text.split(':')[0]}",
        why=f"{victim_name(ev)} was killed {again.kills} times at the same "
        "usage: memory climbs back to the limit after each restart. A leak grows without bound "
        "(more memory only spaces the kills out); a limit below the steady state is hit on "
        "every peak. Compare memory just after a restart with memory before the kill.",
        commands=["journalctl -k --since -24h | grep -E 'Killed process|oom-kill:'"],
        severity="critical",
    )
