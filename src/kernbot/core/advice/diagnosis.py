"""Advice that follows the diagnosis: each cause gets the fix and the commands that confirm it.

Raising a limit frees nothing when tmpfs files or a kernel leak filled it, so the cause's own
advice comes before the generic limit advice (`advise_oom` orders them). `memcg_limit` and
`adj_forced` are covered by the limit and oom_score_adj advice; `no_swap` by the swap advice.
"""

from __future__ import annotations

from collections.abc import Callable

from kernbot.core.advice.parts import mib, q
from kernbot.core.events import Advice, Finding, OomKillEvent
from kernbot.core.oom.diagnosis import evidence_nodes, nodes_phrase

WORKER_SETTINGS: dict[str, str] = {
    "php-fpm": "pm.max_children in the pool config (pm.max_requests recycles leaky workers)",
    "apache2": "MaxRequestWorkers (mpm_prefork / mpm_worker)",
    "httpd": "MaxRequestWorkers (mpm_prefork / mpm_worker)",
    "gunicorn": "--workers (and --max-requests to recycle leaky workers)",
    "uwsgi": "processes = (and max-requests / reload-on-rss)",
    "celery": "--concurrency (and --max-memory-per-child)",
    "puma": "workers (WEB_CONCURRENCY)",
    "unicorn": "worker_processes",
    "nginx": "worker_processes",
    "postgres": "max_connections (each backend holds work_mem per sort) or a pooler (pgbouncer)",
    "postmaster": "max_connections (each backend holds work_mem per sort) or a pooler (pgbouncer)",
    "sidekiq": "concurrency / the number of sidekiq processes",
    "node": "the cluster / PM2 instance count",
    "python": "the worker or pool size of the application server",
    "python3": "the worker or pool size of the application server",
    "java": "the number of JVMs, each with its own -Xmx",
    "chrome": "the number of browser instances / tabs (e.g. a headless pool size)",
}
"""Program name (comm) -> the setting that decides how many of it run."""


def _shmem(f: Finding, ev: OomKillEvent) -> Advice:
    return Advice(
        title="Shared memory (tmpfs, /dev/shm) filled the memory: clean it, do not raise the limit",
        why=f"{f.summary} Files in tmpfs and SysV segments stay charged after the process dies, "
        "so the next process hits the same wall. Delete what is not needed, size the tmpfs "
        "(size=), or move the files to disk; a memory-backed emptyDir counts against the pod.",
        commands=[
            "df -h -t tmpfs",
            "du -xsh /dev/shm/* /run/* /tmp/* 2>/dev/null | sort -h | tail",
            "ipcs -m --human",
            "grep -E '^(Shmem|ShmemHugePages)' /proc/meminfo",
        ],
        severity="critical",
    )


def _slab(f: Finding, ev: OomKillEvent) -> Advice:
    top = f.evidence.get("top_caches")
    caches = [c.get("name") for c in (top if isinstance(top, list) else []) if isinstance(c, dict)]
    cmds = ["slabtop -o -s c | head -20", "grep -E '^(Slab|SUnreclaim)' /proc/meminfo"]
    cmds += [f"sort -rn /sys/kernel/slab/{q(c)}/alloc_calls | head" for c in caches[:1]]
    return Advice(
        title="Kernel slab memory: a kernel or driver leak",
        why=f"{f.summary} Unreclaimable slab belongs to the kernel (a driver, a filesystem, "
        "conntrack, a leaking module); no process holds it. Find the growing cache, then the "
        "module or kernel update that fixes it.",
        commands=cmds,
        severity="critical",
    )


def _kernel_other(f: Finding, ev: OomKillEvent) -> Advice:
    return Advice(
        title="Memory outside every process: kernel allocations",
        why=f"{f.summary} Look for socket buffers, pipes, vmalloc users, zram, GPU or network "
        "drivers and BPF maps; in a container, cgroup v1 charges them as kmem.",
        commands=[
            "grep -E 'Slab|SUnreclaim|VmallocUsed|Percpu|KernelStack|PageTables' /proc/meminfo",
            "slabtop -o -s c | head -15",
            "ss -tm | grep -o 'skmem:[^ ]*' | head; cat /proc/net/sockstat",
            "zramctl; bpftool map list 2>/dev/null | head",
        ],
        severity="warning",
    )


def _page_cache(f: Finding, ev: OomKillEvent) -> Advice:
    return Advice(
        title="Dirty page cache could not be written back in time",
        why=f"{f.summary} Lower the dirty limits so writers are throttled sooner, or find the "
        "slow disk or network filesystem.",
        commands=[
            "grep -E '^(Dirty|Writeback):' /proc/meminfo",
            "sysctl vm.dirty_ratio vm.dirty_background_ratio vm.dirty_bytes",
            "sysctl -w vm.dirty_background_bytes=67108864 vm.dirty_bytes=268435456",
            "iostat -x 1 3",
        ],
        severity="warning",
    )


def _hugepages(f: Finding, ev: OomKillEvent) -> Advice:
    return Advice(
        title="Hugepages reserved but not used by processes",
        why=f"{f.summary} Reserve only what the database or VM actually maps.",
        commands=[
            "grep -i huge /proc/meminfo",
            "sysctl vm.nr_hugepages vm.nr_overcommit_hugepages",
            "cat /sys/devices/system/node/node*/hugepages/hugepages-*/nr_hugepages",
        ],
        severity="warning",
    )


def _fragmentation(f: Finding, ev: OomKillEvent) -> Advice:
    return Advice(
        title="Free memory was fragmented: no contiguous block of the size asked for",
        why=f"{f.summary} Compact memory, keep more free (min_free_kbytes), or make the driver "
        "ask for smaller blocks.",
        commands=[
            "cat /proc/buddyinfo",
            "echo 1 > /proc/sys/vm/compact_memory",
            "sysctl vm.min_free_kbytes vm.extfrag_threshold",
            "grep -E 'compact_(stall|fail|success)' /proc/vmstat",
        ],
        severity="warning",
    )


def _one_process(f: Finding, ev: OomKillEvent) -> Advice:
    comm = str(f.evidence.get("comm", "?"))
    pid = f.evidence.get("pid")
    return Advice(
        title=f"One process held most of the memory: {comm}",
        why=f"{f.summary} Either it leaks (memory grows until every limit is hit) or its heap "
        "is configured larger than the memory it has (a JVM -Xmx, a cache size, a batch size).",
        commands=[
            f"pgrep -a -x {q(comm)}",
            f"grep -E 'VmRSS|RssAnon|RssShmem' /proc/$(pgrep -n -x {q(comm)})/status",
            f"journalctl -k | grep -E 'Killed process [0-9]+ \\({comm[:15]}\\)' | tail"
            if pid is not None and comm.isidentifier()
            else "journalctl -k | grep 'Killed process' | tail",
        ],
        severity="critical",
    )


def _many_processes(f: Finding, ev: OomKillEvent) -> Advice:
    program = str(f.evidence.get("program", "?"))
    count = f.evidence.get("count")
    setting = WORKER_SETTINGS.get(program)
    why = f"{f.summary} Run fewer of them, or give them memory for the count you run"
    why += f": {program} sets this with {setting}." if setting else "."
    total = f.evidence.get("kb")
    if isinstance(total, int) and isinstance(count, int) and count:
        why += f" Each took about {mib(total // count)}."
    return Advice(
        title=f"Too many {program} processes for the memory ({count})",
        why=why,
        commands=[
            f"pgrep -c -x {q(program)}",
            f"ps -C {q(program)} -o pid,rss,etime,args --sort=-rss | head",
        ],
        severity="critical",
    )


def _cpuset(f: Finding, ev: OomKillEvent) -> Advice:
    e = f.evidence
    allowed = evidence_nodes(e.get("allowed_nodes"))
    where = nodes_phrase(allowed) if allowed else "some NUMA nodes"
    policy = e.get("constraint") == "CONSTRAINT_MEMORY_POLICY"
    by = "A NUMA memory policy (numactl --membind, set_mempolicy)" if policy else "A cpuset"
    fix = (
        "Bind to more nodes (numactl --membind=…, or --interleave=all / --preferred=N, which "
        "fall back to other nodes), or move the node's other users away."
        if policy
        else "Widen the cpuset's mems (cpuset.mems, Kubernetes' CPU manager / NUMA topology "
        "policy) or give the workload less to hold on that node."
    )
    commands = [
        "numactl --hardware",
        "grep -E 'MemTotal|MemFree|FilePages|AnonPages' /sys/devices/system/node/node*/meminfo",
    ]
    cpuset = e.get("cpuset")
    if not policy and isinstance(cpuset, str) and cpuset.strip("/"):
        path = "/sys/fs/cgroup/" + cpuset.strip("/") + "/cpuset.mems.effective"
        commands.append(f"cat {q(path)}")
    return Advice(
        title=f"{by} confined the memory to {where}, which ran out: not the whole host",
        why=f"{f.summary} {fix}",
        commands=commands,
        severity="warning",
    )


def _swap_exhausted(f: Finding, ev: OomKillEvent) -> Advice:
    return Advice(
        title="Swap was full too",
        why=f"{f.summary} Swap only delayed the OOM; the growth must stop or memory be added.",
        commands=["swapon --show", "grep -E '^Swap' /proc/meminfo"],
        severity="warning",
    )


ADVICE: dict[str, Callable[[Finding, OomKillEvent], Advice]] = {
    "shmem": _shmem,
    "slab": _slab,
    "kernel_other": _kernel_other,
    "page_cache": _page_cache,
    "hugepages": _hugepages,
    "fragmentation": _fragmentation,
    "one_process": _one_process,
    "many_processes": _many_processes,
    "cpuset_or_mempolicy": _cpuset,
    "swap_exhausted": _swap_exhausted,
}
"""Cause -> its advice; causes not here are answered by the limit, swap and adj advice."""

NOT_THE_LIMIT = frozenset({"shmem", "slab", "kernel_other", "page_cache", "hugepages"})
"""Causes whose fix is not more memory: their advice goes before 'raise the limit'."""


def diagnosis_advice(ev: OomKillEvent) -> list[Advice]:
    """One advice per finding that has one, in the diagnosis' order."""
    return [ADVICE[f.cause](f, ev) for f in ev.diagnosis if f.cause in ADVICE]
