"""Where the memory went, from the report alone: the RAM of the host, or the limit of a cgroup.

The kernel prints several overlapping counters; this adds them up without counting a page
twice. On the host, shmem pages sit on the anon LRU (they are swap-backed), so process anon is
the anon LRU minus shmem, and the file LRU is the page cache without shmem. In a cgroup v1 stats
line `rss` is anon alone and `cache` includes shmem; v2's memory.stat `file` includes shmem too,
and its `kernel` (5.18+) covers stacks, page tables, per-cpu, vmalloc and slab, so what `kernel`
holds beyond those is other kernel memory (pipe buffers, BPF maps...). cgroup v1 only prints
`kmem:` as one number. Whatever the counters do not explain is `unaccounted`.

A cpuset or memory-policy OOM prints the zone and node lines of the allowed nodes only
(SHOW_MEM_FILTER_NODES) while Mem-Info's page counts cover every node: its total is then those
nodes' RAM and its parts come from their node lines (4.8+), which carry no slab, so their slab
is in `unaccounted` and said in `gaps`.

`gaps` names what the report did not print, so a diagnosis can say what it could not judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter
from typing import NamedTuple, cast

from kernbot.core.events import MemoryAccounting, OomKillEvent, Task, validated
from kernbot.core.oom.meminfo_report import (
    HugePool,
    MemReport,
    StatsBlock,
    pages_kb,
    parse_report,
)
from kernbot.core.oom.task_table import PAGE_KB

PARTS = (
    "anon",
    "page_cache",
    "shmem",
    "slab_unreclaimable",
    "slab_reclaimable",
    "kernel_stack",
    "page_tables",
    "hugepages",
    "kernel_other",
    "unevictable",
    "free",
    "unaccounted",
)
"""Every kB of the total lands in exactly one of these (free: below the limit, or free RAM)."""
CONFINED = frozenset({"CONSTRAINT_CPUSET", "CONSTRAINT_MEMORY_POLICY"})
"""Constraints whose report prints only the allowed nodes' zones."""


class ProgramGroup(NamedTuple):
    """Processes of one name in the task table (a tuple: built for every name of every report's
    table, ~3x cheaper than a frozen dataclass)."""

    name: str
    processes: int
    rss_kb: int
    largest_kb: int
    pids: tuple[int, ...] = ()


@dataclass(slots=True)
class Accounting:
    scope: str
    """`memcg` (the total is the cgroup's limit) or `host` (the total is RAM)."""
    total_kb: int | None = None
    usage_kb: int | None = None
    parts: dict[str, int] = field(default_factory=dict)
    sources: dict[str, list[int]] = field(default_factory=dict)
    """Part -> indices into `event.lines` its number came from."""
    dirty_writeback_kb: int | None = None
    writeback_kb: int | None = None
    """The part of `dirty_writeback_kb` already under writeback (sent to the disk)."""
    hugepages_free_kb: int | None = None
    swap_used_kb: int | None = None
    swap_total_kb: int | None = None
    tasks_rss_kb: int = 0
    programs: dict[str, list[int]] = field(default_factory=dict)
    """Program name -> [processes, RSS sum, largest RSS], in the task table's order."""
    tasks: list[Task] = field(default_factory=list)
    """The task table `programs` was added up from."""
    largest_task: Task | None = None
    """The first task of the largest RSS in the table (`rss_kb`, None as 0)."""
    sorted_groups: list[ProgramGroup] | None = None
    """`groups` once asked for."""
    gaps: list[str] = field(default_factory=list)
    report: MemReport = field(default_factory=MemReport)
    nodes: list[int] | None = None
    """The NUMA nodes a confined (cpuset / mempolicy) report was accounted over; None: all."""

    @property
    def groups(self) -> list[ProgramGroup]:
        """The programs of the task table, the largest RSS sum first (ties in the table's
        order); made when first asked for (the diagnosis mostly needs `top_group` only)."""
        if self.sorted_groups is None:
            pids: dict[str, list[int]] = {}
            for t in self.tasks:
                pids.setdefault(t.name, []).append(t.pid)
            new = tuple.__new__  # the NamedTuple's own constructor costs ~3x more
            self.sorted_groups = sorted(
                [
                    new(ProgramGroup, (n, c, rss, top, tuple(pids[n])))
                    for n, (c, rss, top) in self.programs.items()
                ],
                key=_by_rss,
                reverse=True,
            )
        return self.sorted_groups

    def top_program(self) -> str | None:
        """The name of `groups[0]` (None without a task table), without sorting the others."""
        if self.sorted_groups is not None or not self.programs:
            return self.sorted_groups[0].name if self.sorted_groups else None
        programs = self.programs
        return max(programs, key=lambda n: programs[n][1])  # the first of the largest sum

    def top_group(self) -> ProgramGroup | None:
        """`groups[0]` (None without a task table), without making the others."""
        name = self.top_program()
        if name is None:
            return None
        processes, rss, largest = self.programs[name]
        pids = tuple(t.pid for t in self.tasks if t.name == name)
        return tuple.__new__(ProgramGroup, (name, processes, rss, largest, pids))

    def to_model(self) -> MemoryAccounting:
        """The event's `accounting` field, made as validation makes it (`events.validated`): every
        value is already of its field's type, every container a fresh copy."""
        return validated(
            MemoryAccounting,
            {
                "scope": "memcg" if self.scope == "memcg" else "host",
                "total_kb": self.total_kb,
                "usage_kb": self.usage_kb,
                "parts_kb": dict(self.parts),
                "dirty_writeback_kb": self.dirty_writeback_kb,
                "hugepages_free_kb": self.hugepages_free_kb,
                "swap_used_kb": self.swap_used_kb,
                "swap_total_kb": self.swap_total_kb,
                "tasks_rss_kb": self.tasks_rss_kb,
                "lines": {k: list(v) for k, v in self.sources.items() if v},
                "not_in_report": list(self.gaps),
            },
        )


def account(ev: OomKillEvent) -> Accounting:
    """The accounting of one OOM event, from its lines and task table."""
    # a memory cgroup's OOM by the event itself: only the cgroup's numbers are read then
    by_event = not ev.global_oom and ev.memcg is not None
    rep = parse_report(ev.lines, memcg=by_event)
    memcg = by_event or rep.counters.get("memory") is not None
    acc = Accounting(scope="memcg" if memcg else "host", report=rep)
    if memcg:
        _account_memcg(acc, rep, ev)
    elif ev.constraint in CONFINED and rep.nodes and rep.has_meminfo:
        _account_nodes(acc, rep)
    else:
        _account_host(acc, rep)
    _account_tasks(acc, ev.tasks)
    return acc


def _set(acc: Accounting, part: str, kb: int | None, *lines: int | None) -> None:
    if kb is None:
        return
    parts = acc.parts
    parts[part] = parts.get(part, 0) + (kb if kb > 0 else 0)
    cited = acc.sources.get(part)
    if cited is None:
        acc.sources[part] = cited = []
    if None in lines:
        cited.extend(i for i in lines if i is not None)
    else:
        cited.extend(cast("tuple[int, ...]", lines))  # no None among them


def _set_all(acc: Accounting, values: tuple[tuple[str, int | None], ...], line: int) -> None:
    """`_set(acc, part, kb, line)` for each (part, kb) in order, without a call each."""
    parts, sources = acc.parts, acc.sources
    for part, kb in values:
        if kb is None:
            continue
        parts[part] = parts.get(part, 0) + (kb if kb > 0 else 0)
        cited = sources.get(part)
        if cited is None:
            sources[part] = [line]
        else:
            cited.append(line)


def _account_host(acc: Accounting, rep: MemReport) -> None:
    if not rep.has_meminfo:
        acc.gaps.append("Mem-Info (free, anon, page cache, shmem, slab)")
    line = rep.pages_line
    managed = [z.managed_kb for z in rep.zones if z.managed_kb is not None]
    if managed:
        acc.total_kb = sum(managed)
        total_lines = [z.line for z in rep.zones]
    elif rep.ram_pages is not None:
        reserved = rep.reserved_pages[0] if rep.reserved_pages else 0
        acc.total_kb = (rep.ram_pages[0] - reserved) * PAGE_KB
        total_lines = [rep.ram_pages[1]]
    else:
        acc.gaps.append("total RAM")
        total_lines = []
    acc.sources["total"] = total_lines
    if rep.has_meminfo and line is not None:  # Mem-Info's pages always have their line
        shmem = pages_kb(rep, "shmem") or 0
        anon_lru = pages_kb(rep, "active_anon", "inactive_anon", "isolated_anon") or 0
        _set_all(
            acc,
            (
                ("anon", anon_lru - shmem),
                ("page_cache", pages_kb(rep, "active_file", "inactive_file", "isolated_file")),
                ("shmem", shmem),
                ("slab_unreclaimable", pages_kb(rep, "slab_unreclaimable")),
                ("slab_reclaimable", pages_kb(rep, "slab_reclaimable")),
                ("page_tables", pages_kb(rep, "pagetables", "sec_pagetables")),
                ("unevictable", pages_kb(rep, "unevictable")),
                ("free", pages_kb(rep, "free", "free_pcp")),
            ),
            line,
        )
        acc.dirty_writeback_kb = pages_kb(rep, "dirty", "writeback")
        acc.writeback_kb = pages_kb(rep, "writeback")
        _kernel_stack(acc, rep)
    _hugepages(acc, rep.huge)
    _swap_lines(acc, rep)
    if rep.has_meminfo:
        _usage_and_rest(acc, total_lines)


def _account_nodes(acc: Accounting, rep: MemReport) -> None:
    """The allowed nodes' RAM from their own node and zone lines (a confined report)."""
    nodes = sorted(rep.nodes)
    acc.nodes = nodes
    zones = [z for z in rep.zones if z.node in rep.nodes]
    managed = [z.managed_kb for z in zones if z.managed_kb is not None]
    total_lines = [z.line for z in zones]
    acc.sources["total"] = total_lines
    if managed:
        acc.total_kb = sum(managed)
    else:
        acc.gaps.append("the allowed nodes' RAM (no managed: in the zone lines)")
    node_lines = [rep.nodes[n][1] for n in nodes]

    def node_kb(*keys: str) -> int:
        return sum(rep.nodes[n][0].get(k, 0) for n in nodes for k in keys)

    shmem = node_kb("shmem")
    anon = node_kb("active_anon", "inactive_anon", "isolated(anon)") - shmem
    _set(acc, "anon", anon, *node_lines)
    _set(acc, "page_cache", node_kb("active_file", "inactive_file", "isolated(file)"), *node_lines)
    _set(acc, "shmem", shmem, *node_lines)
    _set(acc, "kernel_stack", node_kb("kernel_stack"), *node_lines)
    _set(acc, "page_tables", node_kb("pagetables", "sec_pagetables"), *node_lines)
    _set(acc, "unevictable", node_kb("unevictable"), *node_lines)
    free = sum(z.free_kb + z.values_kb.get("free_pcp", 0) for z in zones)
    _set(acc, "free", free, *total_lines)
    acc.dirty_writeback_kb = node_kb("dirty", "writeback")
    acc.writeback_kb = node_kb("writeback")
    _hugepages(acc, [h for h in rep.huge if h.node in rep.nodes])
    _swap_lines(acc, rep)
    acc.gaps.append("slab of the allowed nodes (Mem-Info prints slab for all nodes together)")
    _usage_and_rest(acc, total_lines)


def _hugepages(acc: Accounting, huge: list[HugePool]) -> None:
    """Hugepages reserved (count x size) and how much of that is free, from these pools."""
    if huge:
        _set(acc, "hugepages", sum(h.total * h.size_kb for h in huge), *(h.line for h in huge))
        acc.hugepages_free_kb = sum(h.free * h.size_kb for h in huge)


def _usage_and_rest(acc: Accounting, total_lines: list[int]) -> None:
    """What is in use (the total less free) and what no part explains (`unaccounted`)."""
    if acc.total_kb is not None:
        acc.usage_kb = acc.total_kb - acc.parts.get("free", 0)
        _set(acc, "unaccounted", acc.total_kb - sum(acc.parts.values()), *total_lines)


def _swap_lines(acc: Accounting, rep: MemReport) -> None:
    if rep.swap_total_kb is not None:
        acc.swap_total_kb = rep.swap_total_kb[0]
        if rep.swap_free_kb is not None:
            acc.swap_used_kb = rep.swap_total_kb[0] - rep.swap_free_kb[0]
        acc.sources["swap"] = [rep.swap_total_kb[1]]


def _kernel_stack(acc: Accounting, rep: MemReport) -> None:
    node_stacks = [(v["kernel_stack"], i) for v, i in rep.nodes.values() if "kernel_stack" in v]
    if node_stacks:
        _set(acc, "kernel_stack", sum(k for k, _ in node_stacks), *(i for _, i in node_stacks))
        return
    zone_stacks = [
        (z.values_kb["kernel_stack"], z.line) for z in rep.zones if "kernel_stack" in z.values_kb
    ]
    if zone_stacks:
        _set(acc, "kernel_stack", sum(k for k, _ in zone_stacks), *(i for _, i in zone_stacks))


def _v1_values(blocks: list[StatsBlock]) -> dict[str, int]:
    """Hierarchical values: the `total_` keys when printed, else the blocks' local values summed."""
    first = blocks[0].values_kb
    if any(k.startswith("total_") for k in first):
        return {k[len("total_") :]: v for k, v in first.items() if k.startswith("total_")}
    out: dict[str, int] = {}
    for b in blocks:
        for k, v in b.values_kb.items():
            out[k] = out.get(k, 0) + v
    return out


def _account_memcg(acc: Accounting, rep: MemReport, ev: OomKillEvent) -> None:
    mem = rep.counters.get("memory")
    memsw = rep.counters.get("memory+swap")
    swap = rep.counters.get("swap")
    if mem is None:
        acc.gaps.append("the cgroup's usage and limit")
        if ev.memcg is not None and ev.memcg.usage_kb is not None:
            acc.usage_kb = ev.memcg.usage_kb
            acc.total_kb = ev.memcg.limit_kb
    else:
        acc.usage_kb = mem.usage_kb
        acc.total_kb = mem.limit_kb
        acc.sources["total"] = [mem.line]
        if mem.limit_kb is None and memsw is not None and memsw.limit_kb is not None:
            acc.total_kb = memsw.limit_kb
            acc.sources["total"].append(memsw.line)
    if swap is not None:
        acc.swap_used_kb, acc.swap_total_kb = swap.usage_kb, swap.limit_kb
        acc.sources["swap"] = [swap.line]
    elif memsw is not None and mem is not None:
        # memory+swap limits the sum; only an equal limit says how much swap is allowed (none).
        acc.swap_used_kb = max(memsw.usage_kb - mem.usage_kb, 0)
        if memsw.limit_kb is not None and memsw.limit_kb == mem.limit_kb:
            acc.swap_total_kb = 0
        acc.sources["swap"] = [memsw.line]
    blocks = [b for b in rep.stats if b.has_values()]
    if not blocks:
        acc.gaps.append("memory.stat (what filled the cgroup)")
    elif blocks[0].v2 and "rss" not in blocks[0].tokens_kb and "rss" not in blocks[0].printed:
        # 6.x prints cgroup v1 stats as memory.stat lines too (`rss N` in bytes): keys decide.
        _account_v2(acc, blocks[0])
    else:
        _account_v1(acc, rep, blocks)
    if acc.total_kb is not None and acc.usage_kb is not None:
        _set(acc, "free", acc.total_kb - acc.usage_kb, mem.line if mem else None)
    if acc.usage_kb is not None and blocks:
        known = sum(acc.parts.values()) - acc.parts.get("free", 0)
        _set(acc, "unaccounted", acc.usage_kb - known, mem.line if mem else None)


def _account_v1(acc: Accounting, rep: MemReport, blocks: list[StatsBlock]) -> None:
    vals = _v1_values(blocks)
    lines = [b.line for b in blocks]
    shmem = vals.get("shmem", 0)
    _set(acc, "anon", vals.get("rss"), *lines)
    if "cache" in vals:
        _set(acc, "page_cache", vals["cache"] - shmem, *lines)
    _set(acc, "shmem", vals.get("shmem"), *lines)
    if "dirty" in vals or "writeback" in vals:
        acc.dirty_writeback_kb = vals.get("dirty", 0) + vals.get("writeback", 0)
        acc.writeback_kb = vals.get("writeback", 0)
    kmem = rep.counters.get("kmem")
    if kmem is not None:
        _set(acc, "kernel_other", kmem.usage_kb, kmem.line)
    else:
        acc.gaps.append("kernel memory (no kmem: line)")


_V2_READ = (
    *("anon", "file", "shmem", "slab_unreclaimable", "slab_reclaimable", "kernel_stack"),
    *("pagetables", "sec_pagetables", "file_dirty", "file_writeback", "slab", "sock"),
    *("percpu", "vmalloc", "kernel"),
)
"""The memory.stat keys `_account_v2` reads."""


def _account_v2(acc: Accounting, block: StatsBlock) -> None:
    v = block.kb(_V2_READ)
    line = block.line
    shmem = v.get("shmem", 0)
    file = v.get("file")
    pt = [v[k] for k in ("pagetables", "sec_pagetables") if k in v]
    _set_all(
        acc,
        (
            ("anon", v.get("anon")),
            ("page_cache", None if file is None else file - shmem),
            ("shmem", v.get("shmem")),
            ("slab_unreclaimable", v.get("slab_unreclaimable")),
            ("slab_reclaimable", v.get("slab_reclaimable")),
            ("kernel_stack", v.get("kernel_stack")),
            ("page_tables", sum(pt) if pt else None),
        ),
        line,
    )
    acc.dirty_writeback_kb = v.get("file_dirty", 0) + v.get("file_writeback", 0)
    acc.writeback_kb = v.get("file_writeback", 0)
    named = ("kernel_stack", "pagetables", "sec_pagetables", "percpu", "vmalloc")
    slab = v.get("slab", v.get("slab_reclaimable", 0) + v.get("slab_unreclaimable", 0))
    other = v.get("sock", 0) + v.get("percpu", 0) + v.get("vmalloc", 0)
    if "kernel" in v:
        other += max(v["kernel"] - slab - sum(v.get(k, 0) for k in named), 0)
    _set(acc, "kernel_other", other, line)


def _account_tasks(acc: Accounting, tasks: list[Task]) -> None:
    if not tasks:
        acc.gaps.append("the task table")
        return
    # name -> [processes, rss sum, largest rss]: one pass, a list per program; and the first
    # task of the largest rss (what `max` by rss would give)
    programs: dict[str, list[int]] = {}
    get = programs.get
    total = 0
    largest, largest_kb = tasks[0], tasks[0].rss_kb or 0
    for t in tasks:
        rss = t.rss_kb or 0
        total += rss
        if rss > largest_kb:
            largest, largest_kb = t, rss
        name = t.name
        group = get(name)
        if group is None:
            programs[name] = [1, rss, rss]
        else:
            group[0] += 1
            group[1] += rss
            if rss > group[2]:  # noqa: PLR1730 (max() is a call per task)
                group[2] = rss
    acc.tasks_rss_kb += total
    acc.largest_task = largest
    acc.programs = programs
    acc.tasks = tasks
    acc.sorted_groups = None


_by_rss = itemgetter(2)
"""A `ProgramGroup`'s `rss_kb`."""
