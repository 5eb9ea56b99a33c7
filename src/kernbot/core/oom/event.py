"""Build the `OomKillEvent` for a report as far as it has been read.

The assembler calls `build_event` at the kill line and again after every follow-up, and
compares the results: so this is a pure function of the report state, and an event built twice
from the same state is equal. Scores need the report's total pages (the memcg limit, or RAM and
swap for a global OOM) and its kernel era (`kernbot.core.oom.era`).

Corner-case lines go into extra fields, present only when their line was seen (so ordinary
events keep their shape):

* `exiting_victims`: `[{pid, comm}]` from `OOM victim … is already exiting. Skip killing the
  task`: the kernel chose that task but sent no kill (it was exiting already).
* `mm_pinned_by`: `{pid, comm}` from `oom killer … has mm pinned by …`: init shares the
  victim's memory, so the reaper cannot free it and the OOM may repeat.
* `sysrq`: true for a manual OOM, one that follows `sysrq: Manual OOM execution` or whose
  header says `order=-1` (only SysRq-f asks for that): someone pressed SysRq-f or wrote `f` to
  /proc/sysrq-trigger; no memory pressure forced it.
* `sysrq_ignored`: the reason of `OOM request ignored. No task eligible` after a manual OOM.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel

from kernbot.core.bounds import KMSG_RECORD_MAX, clip, clip_comm
from kernbot.core.cgroup_identity import identify, identify_container
from kernbot.core.context import OomContext
from kernbot.core.event_id import stable_event_id
from kernbot.core.events import (
    MAX_LINES,
    WIRE_VERSION,
    ContainerOwner,
    Kubernetes,
    Memcg,
    MemInfo,
    OomKillEvent,
    ProcessRef,
    Reaper,
    Task,
    Trigger,
    validated,
)
from kernbot.core.oom import lines as ol
from kernbot.core.oom.era import kernel_era, normalised_3x, root_bonus_era
from kernbot.core.oom.report_state import ReportState
from kernbot.core.oom.score import oom_score
from kernbot.core.oom.task_table import PAGE_KB, TaskRow
from kernbot.core.oom.victim import killed_victim, victim


def memcg_totalpages(r: ReportState) -> int | None:
    mem = r.counters.get("memory")
    if mem is None or mem.limit_kb is None:
        return None
    pages = mem.limit_kb // PAGE_KB
    swap = r.counters.get("swap")
    memsw = r.counters.get("memory+swap")
    if swap is not None and swap.limit_kb is not None:
        pages += swap.limit_kb // PAGE_KB
    elif memsw is not None and memsw.limit_kb is not None:
        pages = max(pages, memsw.limit_kb // PAGE_KB)
    return pages


def global_totalpages(r: ReportState) -> int | None:
    if r.managed_kb:
        ram = r.managed_kb // PAGE_KB
    elif "pages_ram" in r.meminfo:
        ram = r.meminfo["pages_ram"] - r.meminfo.get("reserved", 0)
    else:
        return None
    return ram + r.meminfo.get("total_swap", 0) // PAGE_KB


def is_memcg(r: ReportState) -> bool:
    ok = r.oom_kill
    if ok is not None and (ok.constraint == "CONSTRAINT_MEMCG" or ok.oom_memcg is not None):
        return True
    return (
        r.oom_path is not None
        or "memory" in r.counters
        or (r.killed is not None and r.killed.memcg)
        or (r.kill_process is not None and r.kill_process.memcg)
    )


def _header_adj(h: ol.Header | None) -> int | None:
    if h is None:
        return None
    return h.oom_score_adj if h.oom_score_adj is not None else h.oom_adj


SCORED_ROWS = 1024
"""Task rows whose `Task` fields are kept per scoring scale (`_scored_tasks`): in an OOM loop
the tasks that are not the victim print the very same row, read into the very same `TaskRow`
(`task_table.SEEN_ROWS`), report after report. At most SCORED_SCALES x SCORED_ROWS dicts of
ten small values (~2 MB; a cgroup in a loop keeps one scale, its limit)."""
SCORED_SCALES = 4
_SCORED: dict[tuple[str | None, int | None, bool, bool], dict[TaskRow, dict[str, Any]]] = {}
"""(era, totalpages, root bonus era, normalised 3.x) -> row -> the row's `Task` fields."""


def _task_fields(
    t: TaskRow, era: str | None, totalpages: int | None, bonus_era: bool, norm: bool
) -> dict[str, Any]:
    """What validating the row's dict with its score into a `Task` keeps: Task's fields in
    order, the name cut as `Comm` cuts it (every other value an int or None already)."""
    return {
        "pid": t.pid,
        "uid": t.uid,
        "tgid": t.tgid,
        "total_vm_kb": t.total_vm_kb,
        "rss_kb": t.rss_kb,
        "pgtables_kb": t.pgtables_kb,
        "swapents_kb": t.swapents_kb,
        "oom_score_adj": t.oom_score_adj,
        "name": clip_comm(t.name),
        "oom_score": oom_score(
            era=era,
            rss_kb=t.rss_kb or 0,
            swapents_kb=t.swapents_kb or 0,
            pgtables_kb=t.pgtables_kb or 0,
            oom_score_adj=t.oom_score_adj or 0,
            totalpages=totalpages,
            root_bonus=bonus_era and t.uid == 0,
            normalised_3x=norm,
        ),
    }


def _scored_tasks(
    r: ReportState, era: str | None, totalpages: int | None, memcg_oom: bool
) -> list[Task]:
    """The report's task rows as `Task`s with their scores. A row's fields depend on the row
    and the report's scale only, so they are kept (`_SCORED`) and each event gets its own
    `Task`s made from a copy (`events.validated`: a validated `Task` per row was ~1 us, a
    score ~1.5 us, a dozen per report)."""
    # CAP_SYS_ADMIN is not in the report; containers (memcg OOMs) rarely hold it, root hosts do.
    bonus_era = root_bonus_era(r) and not memcg_oom
    norm = normalised_3x(r)
    scale = (era, totalpages, bonus_era, norm)
    known = _SCORED.get(scale)
    if known is None:
        if len(_SCORED) >= SCORED_SCALES:
            _SCORED.clear()
        known = _SCORED[scale] = {}
    tasks: list[Task] = []
    for t in r.tasks:
        fields = known.get(t)
        if fields is None:
            if len(known) >= SCORED_ROWS:
                known.clear()
            fields = known[t] = _task_fields(t, era, totalpages, bonus_era, norm)
        tasks.append(validated(Task, fields.copy()))
    return tasks


def _trigger(r: ReportState) -> Trigger:
    h, stack = r.header, r.stack
    comm = h.comm if h else (stack.comm if stack else None)
    fields = {
        "comm": clip_comm(comm) if comm is not None else None,
        "pid": stack.pid if stack else None,
        "gfp_mask": h.gfp_mask if h else None,
        "order": h.order if h else None,
        "oom_score_adj": _header_adj(h),
    }
    return validated(Trigger, fields)


def _memcg(r: ReportState, oom_path: str | None, task_path: str | None) -> Memcg:
    mem = r.counters.get("memory")
    swap = r.counters.get("swap")
    memsw = r.counters.get("memory+swap")
    fields = {
        "oom_path": oom_path,
        "task_path": task_path,
        "usage_kb": mem.usage_kb if mem else None,
        "limit_kb": mem.limit_kb if mem else None,
        "failcnt": mem.failcnt if mem else None,
        "swap_usage_kb": swap.usage_kb if swap else None,
        "swap_limit_kb": swap.limit_kb if swap else None,
        "memsw_usage_kb": memsw.usage_kb if memsw else None,
        "memsw_limit_kb": memsw.limit_kb if memsw else None,
        "memsw_failcnt": memsw.failcnt if memsw else None,
    }
    return validated(Memcg, fields)


def _meminfo(r: ReportState) -> MemInfo:
    mi = r.meminfo
    return MemInfo(
        total_ram_kb=mi["pages_ram"] * PAGE_KB if "pages_ram" in mi else None,
        free_kb=mi["free"] * PAGE_KB if "free" in mi else None,
        total_swap_kb=mi.get("total_swap"),
        free_swap_kb=mi.get("free_swap"),
        reserved_kb=mi["reserved"] * PAGE_KB if "reserved" in mi else None,
    )


def _reaper(rp: ol.ReaperLine | None) -> Reaper | None:
    if rp is None:
        return None
    fields = {
        "pid": rp.pid,
        "comm": clip_comm(rp.comm),
        "reaped": rp.reaped,
        "anon_rss_kb": rp.anon_rss_kb,
        "file_rss_kb": rp.file_rss_kb,
        "shmem_rss_kb": rp.shmem_rss_kb,
    }
    return validated(Reaper, fields)


def _kill_line_only(r: ReportState) -> bool:
    """Nothing of the report but its kill line (and follow-ups): the report was not printed."""
    return (
        r.header is None
        and r.stack is None
        and r.oom_kill is None
        and r.kill_process is None
        and not r.counters
        and not r.tasks
        and r.layout is None
        and r.task_path is None
        and r.oom_path is None
        and not r.meminfo
        and not r.managed_kb
    )


def report_event_id(r: ReportState, host: str | None, boot_id: str | None) -> str:
    """The id `build_event` gives the report's event (the same for every revision)."""
    first = r.first
    return stable_event_id(first, host or first.host, boot_id or first.boot_id)


def _wire_lines(lines: list[str]) -> list[str]:
    """The report's lines, each cut to what the wire takes (`KMSG_RECORD_MAX`): the kernel's
    records are shorter, but a log file's line may be up to a MiB (the agent's file source) and
    an event the bot refuses would be dropped, kill and all."""
    if lines and max(map(len, lines)) > KMSG_RECORD_MAX:
        return [clip(line, KMSG_RECORD_MAX) for line in lines]
    return lines


_M = TypeVar("_M", bound=BaseModel)


OWNER_PATHS_MAX = 4096
"""Longer cgroup paths (a garbled line) are not kept by `_owners`: its memory stays small."""


def _owners(
    task_path: str | None, oom_path: str | None
) -> tuple[Kubernetes | None, ContainerOwner | None]:
    """Who owns the report's cgroups: the pod of the first path that names one, else the other
    owner (container, LXC guest, unit) of the first that names one. The same for every kill of a
    cgroup in an OOM loop, so kept (`_kept_owners`); the callers take copies (`_copy`): the agent
    fills a pod's names in on its event's `kubernetes`."""
    if len(task_path or "") + len(oom_path or "") <= OWNER_PATHS_MAX:
        return _kept_owners(task_path, oom_path)
    return _owners_of(task_path, oom_path)


def _owners_of(
    task_path: str | None, oom_path: str | None
) -> tuple[Kubernetes | None, ContainerOwner | None]:
    for path in (task_path, oom_path):
        if path and (kube := identify(path)):
            return kube, None
    for path in (task_path, oom_path):
        if path and (owner := identify_container(path)):
            return None, owner.owner()
    return None, None


_kept_owners = lru_cache(maxsize=64)(_owners_of)


def _copy(model: _M | None) -> _M | None:
    """A model of `_owners` copied (its values are strings and None)."""
    if model is None:
        return None
    return validated(type(model), dict(model.__dict__), set(model.model_fields_set))


def build_event(
    r: ReportState,
    *,
    host: str | None,
    boot_id: str | None,
    lines: int | None = None,
    revision: int = 0,
) -> OomKillEvent:
    """The event for a report as far as it has been read (its first `lines` lines kept, when
    given: a revision built after more lines were absorbed), with `revision` set when not 0.

    Made as validation would make it from these values (`events.validated`): each is typed by
    the report's parser (ints, bools, strs, models made here), the comms cut by `clip_comm` as
    their `Comm` type does, the lists fresh; what validation refuses (more than MAX_LINES
    lines) goes through the constructor and is refused as before."""
    first = r.first
    boot = boot_id or first.boot_id
    era = kernel_era(r)
    memcg_oom = is_memcg(r)
    totalpages = memcg_totalpages(r) if memcg_oom else global_totalpages(r)
    tasks = _scored_tasks(r, era, totalpages, memcg_oom)
    rows = {t.pid: t for t in tasks}
    ok = r.oom_kill
    task_path = (ok.task_memcg if ok else None) or r.task_path
    oom_path = (ok.oom_memcg if ok else None) or r.oom_path
    constraint = ok.constraint if ok else None
    if constraint is None and memcg_oom:
        constraint = "CONSTRAINT_MEMCG"
    global_oom = (ok.global_oom if ok else False) or (
        not memcg_oom and ("start" in r.meminfo_flags or r.managed_kb > 0)
    )
    kube, container = _owners(task_path, oom_path)
    kube, container = _copy(kube), _copy(container)
    pinned = r.mm_pinned
    wire_lines = _wire_lines(r.lines[:lines] if lines is not None else list(r.lines))
    fields: dict[str, Any] = {
        "version": WIRE_VERSION,
        "id": report_event_id(r, host, boot_id),
        "revision": revision,
        "time": first.wall.isoformat() if first.wall else None,
        "mono_usec": first.mono_usec,
        "host": host or first.host,
        "boot_id": boot,
        "seq": first.seq,
        "lines": wire_lines,
        "advice": [],
        "history": False,
        "test": False,
        "kind": "oom_kill",
        "constraint": constraint,
        "global_oom": global_oom,
        "trigger": _trigger(r),
        "victim": victim(r, era, totalpages, rows),
        "memcg": _memcg(r, oom_path, task_path) if memcg_oom or task_path is not None else None,
        "kubernetes": kube,
        "meminfo": _meminfo(r) if not memcg_oom and (r.meminfo or r.managed_kb) else None,
        "tasks": tasks,
        "reaper": _reaper(r.reaper),
        "panic": r.panic is not None,
        "group_kill": r.group_path is not None,
        "group_victims": [killed_victim(k) for k in r.group_victims],
        "complete": r.killed is not None,
        "totalpages": totalpages,
        "kernel_era": era,
        "missing_from_log": False,
        "exiting_victims": [ProcessRef(pid=x.pid, comm=x.comm) for x in r.exiting],
        "mm_pinned_by": (
            None if pinned is None else ProcessRef(pid=pinned.by_pid, comm=pinned.by_comm)
        ),
        "sysrq": r.is_sysrq(),
        "sysrq_ignored": r.sysrq_ignored,
        "lines_omitted": r.lines_omitted,
        "group_path": r.group_path,
        "container": container,
        "diagnosis": [],
        "diagnosis_gaps": [],
        "accounting": None,
        "context": OomContext(),
        "risk_id": None,
        "risk_started": None,
        "killed": r.killed is not None or bool(r.group_victims) or r.reaper is not None,
        "report_suppressed": r.killed is not None and _kill_line_only(r),
    }
    given = set(_EVENT_GIVEN)
    if revision:
        given.add("revision")
    if pinned is not None:
        given.add("mm_pinned_by")
    if container is not None:
        given.add("container")
    if len(wire_lines) > MAX_LINES or revision < 0:  # what validation refuses: refused as before
        return OomKillEvent(**{name: fields[name] for name in given})
    return validated(OomKillEvent, fields, given)


_EVENT_GIVEN = frozenset(
    (
        "id",
        "time",
        "mono_usec",
        "host",
        "boot_id",
        "seq",
        "lines",
        "constraint",
        "global_oom",
        "trigger",
        "victim",
        "memcg",
        "kubernetes",
        "meminfo",
        "tasks",
        "reaper",
        "panic",
        "group_kill",
        "group_victims",
        "complete",
        "killed",
        "report_suppressed",
        "totalpages",
        "kernel_era",
        "lines_omitted",
        "group_path",
        "exiting_victims",
        "sysrq",
        "sysrq_ignored",
    )
)
"""The fields `build_event` always sets (`model_fields_set`); `revision`, `mm_pinned_by` and
`container` too when they are not the default."""
