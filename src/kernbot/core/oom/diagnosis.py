"""Why memory ran out: findings read from the report's own numbers, most likely first.

Each finding is a cause code of the contract (ARCHITECTURE.md, "Event JSON": `memcg_limit`,
`one_process`, `many_processes`, `slab`, `shmem`, `hugepages`, `fragmentation`, `page_cache`,
`swap_exhausted`, `no_swap`, `adj_forced`, `cpuset_or_mempolicy`, `kernel_other`), a sentence
with the numbers, and the evidence: the numbers (kB) and the indices into `event.lines` they came
from. A cause is claimed only when its own numbers carry it (a share of the limit or of RAM, a
free list without a block of the order asked for), never from words in the log; when the report
lacks a section, `gaps` says what could not be judged instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kernbot.core.events import Finding, OomKillEvent, Task, validated
from kernbot.core.oom.accounting import CONFINED, Accounting, account
from kernbot.core.oom.meminfo_report import pages_kb
from kernbot.core.oom.task_table import PAGE_KB
from kernbot.core.units import size

MOST = 0.5
"""`one_process` / `many_processes`: the process (or program) holds at least half the memory."""
LARGE_SHARE = 0.2
"""shmem, slab, hugepages, other kernel memory: a fifth of the memory is more than any healthy
host or container keeps there, and enough to be why the rest ran out."""
DIRTY_SHARE = 0.1
"""`page_cache`: dirty + writeback above vm.dirty_background_ratio's default (10%) means
writeback was not keeping up, so those pages could not be reclaimed in time."""
MANY = 3
"""`many_processes`: at least this many processes of one program."""
SWAP_FULL = 0.99
"""`swap_exhausted`: at least this share of swap in use."""


@dataclass(slots=True)
class Diagnosis:
    findings: list[Finding] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    """What could not be judged, and why (a section the report did not carry)."""
    accounting: Accounting | None = None


UNREADABLE_NUMBER = (
    "the report holds a number too long to read (thousands of digits): not diagnosed"
)


def _finding(cause: str, summary: str, evidence: dict[str, Any]) -> Finding:
    """`Finding(cause=…, summary=…, evidence=…)` made as validation makes it (`events.validated`):
    `evidence` holds JSON values only, each list and dict its own."""
    return validated(Finding, {"cause": cause, "summary": summary, "evidence": evidence})


_mib = size
"""A size in prose (`units.size`; bound here, not wrapped: a call less per number)."""


def _pct(share: float) -> str:
    """A share for prose; RSS sums can pass 100% (shared pages count once per process)."""
    if share > 1:
        return "more than 100% (RSS counts shared pages in every process that maps them)"
    return f"{share * 100:.0f}%"


def _lines(*groups: list[int] | None) -> list[int]:
    if len(groups) == 1:
        return sorted(set(groups[0] or ()))
    out: set[int] = set()
    for g in groups:
        out.update(g or [])
    return sorted(out)


def diagnose(ev: OomKillEvent) -> Diagnosis:
    """The findings for one OOM kill event."""
    acc = account(ev)
    d = Diagnosis([], [f"not in the report: {g}" for g in acc.gaps], acc)
    if ev.sysrq or ev.trigger.order == -1:
        d.gaps.append("a manual OOM (SysRq-f): no allocation failed, nothing ran out")
    elif acc.scope == "memcg":
        _memcg_findings(d, ev, acc)
    else:
        _host_findings(d, ev, acc)
    adj = _adj_forced(ev)
    if adj is not None:
        d.findings.append(adj)
    d.findings.extend(_swap(acc))
    return d


def _memcg_findings(d: Diagnosis, ev: OomKillEvent, acc: Accounting) -> None:
    d.findings.append(_memcg_limit(ev, acc))
    base = acc.usage_kb or acc.total_kb
    if base is None:
        d.gaps.append("what filled the cgroup: neither usage nor limit was printed")
        return
    fillers = _fillers(acc, base, "of the cgroup's usage")
    fillers += _outweighing(fillers, _process_findings(ev, acc, base, "of the cgroup's usage"))
    if not fillers and acc.programs:
        d.gaps.append(_spread(acc, base))
    d.findings.extend(sorted(fillers, key=_by_size))


def _by_size(f: Finding) -> int:
    """Biggest first."""
    kb = f.evidence.get("kb")
    return -kb if isinstance(kb, int) else 0


def _memcg_limit(ev: OomKillEvent, acc: Accounting) -> Finding:
    rep = acc.report
    mem, memsw = rep.counters.get("memory"), rep.counters.get("memory+swap")
    path = (ev.memcg.oom_path if ev.memcg else None) or "the cgroup"
    ev_lines = acc.sources.get("total", [])
    evidence: dict[str, Any] = {"usage_kb": acc.usage_kb, "limit_kb": acc.total_kb}
    if mem is not None:
        evidence["failcnt"] = mem.failcnt
    if (
        memsw is not None
        and memsw.limit_kb is not None
        and mem is not None
        and memsw.usage_kb >= memsw.limit_kb
        and (mem.limit_kb is None or mem.usage_kb < mem.limit_kb)
    ):
        evidence.update(memsw_usage_kb=memsw.usage_kb, memsw_limit_kb=memsw.limit_kb)
        evidence["lines"] = _lines(ev_lines, [memsw.line])
        summary = (
            f"{path} hit its memory+swap limit of {_mib(memsw.limit_kb)} "
            f"({_mib(mem.usage_kb)} in RAM, {_mib(memsw.usage_kb - mem.usage_kb)} in swap)."
        )
        return _finding(cause="memcg_limit", summary=summary, evidence=evidence)
    evidence["lines"] = _lines(ev_lines)
    if acc.total_kb is not None and acc.usage_kb is not None:
        summary = (
            f"{path} hit its own memory limit: {_mib(acc.usage_kb)} used "
            f"of {_mib(acc.total_kb)}" + (f" (failcnt {mem.failcnt})." if mem is not None else ".")
        )
    else:
        summary = f"{path} hit its own memory limit (usage and limit not in the report)."
    return _finding(cause="memcg_limit", summary=summary, evidence=evidence)


def _fillers(acc: Accounting, base: int, of: str) -> list[Finding]:
    """shmem, slab, other kernel memory, dirty page cache, hugepages: each when large."""
    out: list[Finding] = []
    parts = acc.parts
    src = acc.sources

    def share(kb: int) -> float:
        return kb / base if base else 0.0

    shmem = parts.get("shmem")
    if shmem is not None and share(shmem) >= LARGE_SHARE:
        out.append(
            _finding(
                cause="shmem",
                summary=f"shmem (tmpfs, /dev/shm, SysV shared memory) held {_mib(shmem)}, "
                f"{_pct(share(shmem))} {of}; killing a process does not free it.",
                evidence={"kb": shmem, "share": round(share(shmem), 3), "base_kb": base}
                | {"lines": _lines(src.get("shmem"))},
            )
        )
    slab = parts.get("slab_unreclaimable")
    # The kernel's own test (dump_unreclaimable_slab, 4.15+): more unreclaimable slab than all
    # user (LRU) memory; it is what made the kernel print the cache table.
    lru = parts.get("anon", 0) + parts.get("page_cache", 0) + parts.get("shmem", 0)
    kernel_says = acc.scope == "host" and slab is not None and slab > lru and share(slab) >= 0.05
    if slab is not None and (share(slab) >= LARGE_SHARE or kernel_says):
        caches = sorted(acc.report.slab_caches, key=lambda c: -c.used_kb)[:3]
        named = ", ".join(f"{c.name} {_mib(c.used_kb)}" for c in caches)
        out.append(
            _finding(
                cause="slab",
                summary=f"unreclaimable kernel slab held {_mib(slab)}, {_pct(share(slab))} {of}"
                + (f"; biggest caches: {named}." if named else "."),
                evidence={
                    "kb": slab,
                    "share": round(share(slab), 3),
                    "base_kb": base,
                    "top_caches": [{"name": c.name, "used_kb": c.used_kb} for c in caches],
                    "lines": _lines(src.get("slab_unreclaimable"), [c.line for c in caches]),
                },
            )
        )
    # On the host, what no counter explains is kernel memory; not over some nodes, whose slab
    # the report does not print (it is in `unaccounted` there).
    other = parts.get("kernel_other", 0) + (
        parts.get("unaccounted", 0) if acc.scope == "host" and acc.nodes is None else 0
    )
    if other and share(other) >= LARGE_SHARE:
        what = (
            "kernel memory charged to the cgroup (kmem: slab, stacks, pipe and socket buffers;"
            " cgroup v1 does not split it)"
            if acc.report.counters.get("kmem") is not None
            else "kernel memory outside slab, stacks and page tables (sockets, vmalloc, per-cpu,"
            " pipe buffers, zram, drivers, BPF maps)"
        )
        out.append(
            _finding(
                cause="kernel_other",
                summary=f"{what} held {_mib(other)}, {_pct(share(other))} {of}.",
                evidence={"kb": other, "share": round(share(other), 3), "base_kb": base}
                | {"lines": _lines(src.get("kernel_other"), src.get("unaccounted"))},
            )
        )
    dirty = acc.dirty_writeback_kb
    if dirty and share(dirty) >= DIRTY_SHARE:
        cache = parts.get("page_cache", 0)
        wb = acc.writeback_kb or 0
        out.append(
            _finding(
                cause="page_cache",
                summary=f"{_mib(dirty)} of page cache was waiting for the disk ({_mib(dirty - wb)} "
                f"dirty, {_mib(wb)} under writeback; {_pct(share(dirty))} {of}, page cache "
                f"{_mib(cache)}): writeback could not keep up, so those pages could not be "
                "reclaimed in time.",
                evidence={"kb": dirty, "dirty_kb": dirty - wb, "writeback_kb": wb}
                | {"page_cache_kb": cache, "share": round(share(dirty), 3), "base_kb": base}
                | {"lines": _lines(src.get("page_cache"))},
            )
        )
    huge = parts.get("hugepages")
    if huge and share(huge) >= LARGE_SHARE:
        free = acc.hugepages_free_kb or 0
        out.append(
            _finding(
                cause="hugepages",
                summary=f"{_mib(huge)} ({_pct(share(huge))} {of}) is reserved as hugepages, "
                f"{_mib(free)} of it unused, and no ordinary process can use it.",
                evidence={"kb": huge, "free_kb": free, "share": round(share(huge), 3)}
                | {"base_kb": base, "lines": _lines(src.get("hugepages"))},
            )
        )
    return out


def _task_kb(t: Task) -> int:
    """A task's resident memory as the table printed it (anon + file + shmem pages mapped), the
    same measure for every task so the comparison is fair; file pages shared with others count
    in each, so a sum can pass the total."""
    return t.rss_kb or 0


def _outweighing(fillers: list[Finding], procs: list[Finding]) -> list[Finding]:
    """Process findings that hold more than any non-process filler. RSS counts mapped file
    pages (shared libraries, charged to whoever read them first), so a process beside 40 MiB of
    tmpfs can show half a 64 MiB limit in RSS; the bigger filler is the cause then."""
    if not procs:
        return procs
    biggest = max((-_by_size(f) for f in fillers), default=0)
    return [p for p in procs if -_by_size(p) >= biggest]


def _row_lines(ev: OomKillEvent, *pids: int | None) -> list[int]:
    """Indices of the task-table rows (and kill line) of `pids` among the kept lines."""
    heads = tuple(f"[{p}]" for p in pids if p is not None)
    out = []
    for i, line in enumerate(ev.lines):
        text = line.replace(" ", "")
        if text.startswith(heads) or (
            ev.victim.pid in pids and f"process {ev.victim.pid} (" in line and "kB" in line
        ):
            out.append(i)
    return out


def _process_findings(ev: OomKillEvent, acc: Accounting, base: int, of: str) -> list[Finding]:
    top = acc.largest_task  # max(ev.tasks, key=_task_kb), found by the accounting's pass
    if top is None or not base:
        return []
    kb = _task_kb(top)
    top_share = kb / base
    if top_share >= MOST:
        return [
            _finding(
                cause="one_process",
                summary=f"{top.name} (pid {top.pid}) alone held {_mib(kb)}, "
                f"{_pct(top_share)} {of}: a leak or a heap sized beyond the limit.",
                evidence={"kb": kb, "share": round(top_share, 3), "base_kb": base}
                | {"pid": top.pid, "comm": top.name, "tasks_rss_kb": acc.tasks_rss_kb}
                | {"lines": _row_lines(ev, top.pid)},
            )
        ]
    name = acc.top_program()
    if name is not None:
        processes, rss_kb, largest_kb = acc.programs[name]
        if processes >= MANY and rss_kb / base >= MOST and largest_kb / base < MOST:
            g = acc.top_group()
            assert g is not None  # the group of `name`
            return [
                _finding(
                    cause="many_processes",
                    summary=f"{g.processes} processes of {g.name} added up to {_mib(g.rss_kb)}, "
                    f"{_pct(g.rss_kb / base)} {of}; the largest held {_mib(g.largest_kb)}: too "
                    "many workers, none large alone.",
                    evidence={"kb": g.rss_kb, "count": g.processes, "program": g.name}
                    | {"largest_kb": g.largest_kb, "share": round(g.rss_kb / base, 3)}
                    | {"base_kb": base, "lines": _lines(_row_lines(ev, *g.pids))},
                )
            ]
    return []


def _spread(acc: Accounting, base: int) -> str:
    anon = acc.parts.get("anon", acc.tasks_rss_kb)
    n = len(acc.tasks)  # each task is one process of one program
    return (
        f"no single cause: anon memory {_mib(anon)} ({_pct(anon / base)}) is spread over "
        f"{n} processes of {len(acc.programs)} programs, none holding half"
    )


def _host_findings(d: Diagnosis, ev: OomKillEvent, acc: Accounting) -> None:
    confined = _confined(ev, acc)
    if confined is not None:
        d.findings.append(confined)
    frag = _fragmentation(ev, acc)
    if frag is not None:
        d.findings.append(frag)
    base = acc.total_kb
    if base is None:
        d.gaps.append("shares of RAM: total RAM was not printed")
        return
    usable = base - acc.parts.get("hugepages", 0)
    nodes = f"{nodes_phrase(acc.nodes)}'s " if acc.nodes else ""
    fillers = _fillers(acc, base, f"of {nodes}RAM")
    fillers += _outweighing(fillers, _process_findings(ev, acc, usable, f"of {nodes}usable RAM"))
    if not fillers and acc.programs and not d.findings:
        d.gaps.append(_spread(acc, usable))
    d.findings.extend(sorted(fillers, key=_by_size))


_CPUSET = re.compile(r"\bcpuset=([^,\s]+)")
_MASK = re.compile(r"\b(nodemask|mems_allowed)=(\(null\)|\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*)")
MAX_NODES = 1024
"""MAX_NUMNODES on x86_64 (NODES_SHIFT 10); a longer node list is not a kernel's."""


def node_list(text: str) -> list[int] | None:
    """`0-1,3` (the kernel's %*pbl) as [0, 1, 3]; None for `(null)` or anything else."""
    out: set[int] = set()
    for part in text.strip(",").split(","):
        first, _, last = part.partition("-")
        if not first.isdigit() or not (last.isdigit() or not last):
            return None
        lo, hi = int(first), int(last or first)
        if hi < lo or hi >= MAX_NODES:
            return None
        out.update(range(lo, hi + 1))
    return sorted(out) or None


def _masks(ev: OomKillEvent) -> dict[str, tuple[str, int]]:
    """`nodemask` and `mems_allowed` as first printed (text, line index): the oom-kill: line
    (4.19+) or the header and cpuset line (older)."""
    out: dict[str, tuple[str, int]] = {}
    for i, line in enumerate(ev.lines):
        for m in _MASK.finditer(line):
            out.setdefault(m.group(1), (m.group(2), i))
    return out


def nodes_phrase(nodes: list[int]) -> str:
    """`node 1` or `nodes 0,2`."""
    return ("node " if len(nodes) == 1 else "nodes ") + ",".join(str(n) for n in nodes)


def evidence_nodes(value: object) -> list[int] | None:
    """A node list from a finding's evidence (`allowed_nodes`, `elsewhere_nodes`), or None
    when it holds none (evidence may come from another producer, over the wire)."""
    if isinstance(value, list) and value and all(isinstance(n, int) for n in value):
        return value
    return None


def _allowed(
    ev: OomKillEvent, masks: dict[str, tuple[str, int]]
) -> tuple[list[int], str, int] | None:
    """The allowed nodes, the mask that says so (`nodemask=1`) and its line: the nodemask for a
    memory policy, the allocating task's mems_allowed for a cpuset (6.1 prints nodemask=(null)
    there), each falling back to the other."""
    order = ("nodemask", "mems_allowed")
    if ev.constraint == "CONSTRAINT_CPUSET":
        order = ("mems_allowed", "nodemask")
    for name in order:
        if name in masks and (nodes := node_list(masks[name][0])) is not None:
            return nodes, f"{name}={masks[name][0]}", masks[name][1]
    return None


def _other_nodes(masks: dict[str, tuple[str, int]], allowed: list[int], mask: str) -> list[int]:
    """The nodes beside `allowed` that the task's cpuset (mems_allowed) names, for a memory
    policy's OOM (`nodemask=1,cpuset=/,mems_allowed=0-1`); none for a cpuset's."""
    found = masks.get("mems_allowed")
    if found is None or mask.startswith("mems_allowed="):
        return []
    return [n for n in node_list(found[0]) or [] if n not in allowed]


def _confined(ev: OomKillEvent, acc: Accounting) -> Finding | None:
    """A cpuset or memory policy confined the allocation to some nodes: which ones, what they had
    free, and what was free elsewhere, from the zone lines and Mem-Info's free: count."""
    if ev.constraint not in CONFINED:
        return None
    evidence: dict[str, Any] = {"constraint": ev.constraint}
    masks = _masks(ev)
    found = _allowed(ev, masks)
    if found is None:
        summary = (
            f"the allocation was confined ({ev.constraint}) but the report names no nodes: "
            "its cpuset or NUMA memory policy ran out while other nodes may have had memory."
        )
        return _finding(cause="cpuset_or_mempolicy", summary=summary, evidence=evidence)
    allowed, mask, mask_line = found
    rep = acc.report
    free: dict[int, int] = {}
    low: dict[int, int] = {}
    for z in rep.zones:
        free[z.node] = free.get(z.node, 0) + z.free_kb
        low[z.node] = low.get(z.node, 0) + (z.min_kb or 0)
    where = nodes_phrase(allowed)
    evidence |= {"allowed_nodes": allowed, "mask": mask}
    evidence["nodes"] = [
        {"node": n, "free_kb": free[n], "min_kb": low[n], "allowed": n in allowed}
        for n in sorted(free)
    ]
    cpuset = next((m.group(1) for line in ev.lines if (m := _CPUSET.search(line))), None)
    if cpuset is not None:
        evidence["cpuset"] = cpuset
    lines = _lines([mask_line], [z.line for z in rep.zones])
    head = f"the allocation could only use {where} ({ev.constraint}, {mask})"
    shown = [n for n in allowed if n in free]
    if not shown:
        evidence["lines"] = lines
        summary = f"{head}; the report does not print what {where} had free."
        return _finding(cause="cpuset_or_mempolicy", summary=summary, evidence=evidence)
    allowed_free = sum(free[n] for n in shown)
    evidence["allowed_free_kb"] = allowed_free
    said = [
        f"{nodes_phrase([n])} had {_mib(free[n])} free (min watermark {_mib(low[n])})"
        for n in shown
    ]
    others = {n: kb for n, kb in free.items() if n not in allowed}
    said += [f"{nodes_phrase([n])} had {_mib(kb)} free" for n, kb in sorted(others.items())]
    if others:
        evidence["free_elsewhere_kb"] = sum(others.values())
    total_free = pages_kb(rep, "free")
    if total_free is not None and rep.pages_line is not None:
        lines = _lines(lines, list(range(rep.pages_line, (rep.pages_last or rep.pages_line) + 1)))
        elsewhere = max(total_free - allowed_free, 0)
        evidence |= {"total_free_kb": total_free, "free_elsewhere_kb": elsewhere}
        if not others and elsewhere:
            # Only the allowed nodes were printed: the rest is Mem-Info's free: minus theirs.
            rest = _other_nodes(masks, allowed, mask)
            evidence["elsewhere_nodes"] = rest
            said.append(
                f"{nodes_phrase(rest) if rest else 'the other nodes'} had {_mib(elsewhere)} "
                f"free (Mem-Info free {_mib(total_free)} minus {where}'s)"
            )
    evidence["lines"] = lines
    ran_out = "the nodes" if len(allowed) > 1 else "the node"
    return _finding(
        cause="cpuset_or_mempolicy",
        summary=f"{head}: {', '.join(said)}; {ran_out} ran out, not the host.",
        evidence=evidence,
    )


def _fragmentation(ev: OomKillEvent, acc: Accounting) -> Finding | None:
    order = ev.trigger.order
    rep = acc.report
    if order is None or order < 2:
        return None
    if not rep.free_lists or not rep.zones:
        return None
    need_kb = PAGE_KB << order
    usable = [z for z in rep.zones if z.name != "DMA" and z.min_kb is not None]
    lists = [f for f in rep.free_lists if f.zone != "DMA"]
    above = [z for z in usable if z.min_kb is not None and z.free_kb > z.min_kb]
    if not above or any(f.largest_order_kb() >= need_kb for f in lists):
        return None
    z = max(above, key=lambda z: z.free_kb)
    largest = max((f.largest_order_kb() for f in lists), default=0)
    return _finding(
        cause="fragmentation",
        summary=f"an order-{order} allocation ({need_kb} kB contiguous) failed while zone "
        f"{z.name} had {_mib(z.free_kb)} free, above its {_mib(z.min_kb or 0)} min watermark, "
        f"but no free block larger than {largest} kB: memory was fragmented.",
        evidence={"order": order, "need_kb": need_kb, "zone": z.name, "free_kb": z.free_kb}
        | {"min_kb": z.min_kb, "largest_block_kb": largest}
        | {"lines": _lines([z.line], [f.line for f in lists])},
    )


def _adj_forced(ev: OomKillEvent) -> Finding | None:
    """The victim was smaller than another candidate; only its oom_score_adj put it first."""
    v = ev.victim
    adj = v.oom_score_adj
    if adj is None or v.pid is None or not ev.tasks:
        return None

    def size(t: Task) -> int:
        return (t.rss_kb or 0) + (t.swapents_kb or 0) + (t.pgtables_kb or 0)

    # one pass: the victim's first row, and the first of the biggest tasks with a lower adj
    # (not -1000) than the victim's
    row: Task | None = None
    bigger: Task | None = None
    bigger_kb = 0
    pid = v.pid
    for t in ev.tasks:
        if t.pid == pid:
            if row is None:
                row = t
            continue
        t_adj = t.oom_score_adj or 0
        if -1000 < t_adj < adj and (bigger is None or size(t) > bigger_kb):
            bigger, bigger_kb = t, size(t)
    if row is None or bigger is None or bigger_kb <= size(row):
        return None
    return _finding(
        cause="adj_forced",
        summary=f"oom_score_adj {adj}, not size, chose {v.comm} (pid {v.pid}, "
        f"{_mib(size(row))}): {bigger.name} (pid {bigger.pid}, adj {bigger.oom_score_adj or 0}) "
        f"held more, {_mib(size(bigger))}.",
        evidence={"victim_kb": size(row), "victim_adj": adj, "bigger_pid": bigger.pid}
        | {"bigger_comm": bigger.name, "bigger_kb": size(bigger)}
        | {"bigger_adj": bigger.oom_score_adj or 0, "lines": _row_lines(ev, v.pid, bigger.pid)},
    )


def _swap(acc: Accounting) -> list[Finding]:
    total, used = acc.swap_total_kb, acc.swap_used_kb
    if total is None:
        return []
    if total == 0:
        where = "the cgroup may not use swap" if acc.scope == "memcg" else "no swap is configured"
        return [
            _finding(
                cause="no_swap",
                summary=f"{where}, so every anonymous page had to stay in RAM.",
                evidence={"swap_total_kb": 0, "lines": list(acc.sources.get("swap", ()))},
            )
        ]
    if used is not None and used >= total * SWAP_FULL:
        return [
            _finding(
                cause="swap_exhausted",
                summary=f"swap was full: {_mib(used)} of {_mib(total)} in use.",
                evidence={"swap_used_kb": used, "swap_total_kb": total}
                | {"lines": list(acc.sources.get("swap", ()))},
            )
        ]
    return []


def attach_diagnosis(ev: OomKillEvent) -> Diagnosis:
    """Set `diagnosis` on the event, with `accounting` and `diagnosis_gaps` beside it."""
    try:
        d = diagnose(ev)
    except ValueError:
        # A number past `int`'s 4,300 digits in a report line (no kernel prints one; a forged
        # or garbled log can): the event keeps everything else and says why it has no diagnosis.
        d = Diagnosis([], [UNREADABLE_NUMBER])
    ev.diagnosis = d.findings
    if d.accounting is not None:
        ev.accounting = d.accounting.to_model()
    ev.diagnosis_gaps = d.gaps
    return d
