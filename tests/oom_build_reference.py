"""The OOM event build as it was before issue 11 part 6 (commit 2602477), kept as the
reference the faster build is compared with (`tests/test_oom_build.py`): every field validated
by pydantic from keyword arguments, each task scored and validated on its own dict."""

from __future__ import annotations

from pydantic import TypeAdapter

from kernbot.core.bounds import KMSG_RECORD_MAX, clip, clip_comm
from kernbot.core.cgroup_identity import identify, identify_container
from kernbot.core.event_id import stable_event_id
from kernbot.core.events import (
    Memcg,
    MemInfo,
    OomKillEvent,
    ProcessRef,
    Reaper,
    Task,
    Trigger,
    Victim,
)
from kernbot.core.oom import lines as ol
from kernbot.core.oom.era import kernel_era, normalised_3x, root_bonus_era
from kernbot.core.oom.report_state import ReportState
from kernbot.core.oom.score import oom_score
from kernbot.core.oom.task_table import PAGE_KB


def pgtables_fixed(killed: ol.Killed, row: Task | None) -> tuple[int | None, bool]:
    """Undo 5.4.0's `pgtables:` printed in bytes but labelled kB.

    Rule: when the victim's table row is known, the kill line's number equals that row's
    pgtables_bytes; otherwise page tables larger than total_vm/64 + 1 MiB are impossible
    (they map total_vm at ~1/512 of its size), so the number must be bytes.
    """
    kb = killed.pgtables_kb
    if kb is None or kb == 0:
        return kb, False
    if row is not None and row.pgtables_kb is not None:
        if kb != row.pgtables_kb and kb // 1024 == row.pgtables_kb:
            return kb // 1024, True
        return kb, False
    if killed.total_vm_kb is not None and kb > killed.total_vm_kb // 64 + 1024:
        return kb // 1024, True
    return kb, False


def victim(  # noqa: C901, PLR0912  (the code as it was)
    r: ReportState, era: str | None, totalpages: int | None, rows: dict[int, Task]
) -> Victim:
    """The main victim: from the kill line, else `Kill process`, reaper or `oom-kill:` line."""
    v = Victim()
    k, kp, ok, rp = r.killed, r.kill_process, r.oom_kill, r.reaper
    if k is not None:
        v.pid, v.comm, v.uid = k.pid, k.comm, k.uid
        v.total_vm_kb, v.anon_rss_kb = k.total_vm_kb, k.anon_rss_kb
        v.file_rss_kb, v.shmem_rss_kb = k.file_rss_kb, k.shmem_rss_kb
        v.oom_score_adj = k.oom_score_adj
        v.pgtables_kb, v.pgtables_bytes_labelled_kb = pgtables_fixed(k, rows.get(k.pid))
    elif kp is not None:
        v.pid, v.comm = kp.pid, kp.comm
    elif rp is not None:
        v.pid, v.comm = rp.pid, rp.comm
    elif ok is not None and ok.pid is not None:
        v.pid, v.comm = ok.pid, ok.task
    if v.comm is not None:
        v.comm = clip_comm(v.comm)  # set by assignment: not validated (`bounds.clip_comm`)
    if ok is not None and ok.pid == v.pid and v.uid is None:
        v.uid = ok.uid
    if kp is not None and kp.score is not None and kp.pid == v.pid:
        # `Kill process P … score N or sacrifice child` then `Killed process C`: N is P's score.
        v.printed_score = kp.score
    row = rows.get(v.pid) if v.pid is not None else None
    if row is not None:
        if v.uid is None:
            v.uid = row.uid
        if v.oom_score_adj is None:
            v.oom_score_adj = row.oom_score_adj
        if v.comm is None:
            v.comm = row.name
        if v.pgtables_kb is None:
            v.pgtables_kb = row.pgtables_kb
        v.oom_score = row.oom_score
    elif v.pid is not None and v.anon_rss_kb is not None:
        rss = (v.anon_rss_kb or 0) + (v.file_rss_kb or 0) + (v.shmem_rss_kb or 0)
        v.oom_score = oom_score(
            era=era,
            rss_kb=rss,
            pgtables_kb=v.pgtables_kb or 0,
            oom_score_adj=v.oom_score_adj or 0,
            totalpages=totalpages,
            normalised_3x=normalised_3x(r),
        )
    return v


def killed_victim(k: ol.Killed) -> Victim:
    """A memory.oom.group victim: only its own kill line is known."""
    return Victim(
        pid=k.pid,
        comm=k.comm,
        uid=k.uid,
        total_vm_kb=k.total_vm_kb,
        anon_rss_kb=k.anon_rss_kb,
        file_rss_kb=k.file_rss_kb,
        shmem_rss_kb=k.shmem_rss_kb,
        pgtables_kb=k.pgtables_kb,
        oom_score_adj=k.oom_score_adj,
    )


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


_TASKS: TypeAdapter[list[Task]] = TypeAdapter(list[Task])
"""A report's task rows validated into `Task`s in one call: a `Task(**row)` per row cost ~1.6x
(the dozen rows of a typical report: ~18 us against ~11 us)."""


def _scored_tasks(
    r: ReportState, era: str | None, totalpages: int | None, memcg_oom: bool
) -> list[Task]:
    # CAP_SYS_ADMIN is not in the report; containers (memcg OOMs) rarely hold it, root hosts do.
    bonus_era = root_bonus_era(r) and not memcg_oom
    norm = normalised_3x(r)
    rows: list[dict[str, object]] = []
    for t in r.tasks:
        row: dict[str, object] = t._asdict()  # a TaskRow holds Task's other fields
        row["oom_score"] = oom_score(
            era=era,
            rss_kb=t.rss_kb or 0,
            swapents_kb=t.swapents_kb or 0,
            pgtables_kb=t.pgtables_kb or 0,
            oom_score_adj=t.oom_score_adj or 0,
            totalpages=totalpages,
            root_bonus=bonus_era and t.uid == 0,
            normalised_3x=norm,
        )
        rows.append(row)
    return _TASKS.validate_python(rows)


def _trigger(r: ReportState) -> Trigger:
    h = r.header
    return Trigger(
        comm=h.comm if h else (r.stack.comm if r.stack else None),
        pid=r.stack.pid if r.stack else None,
        gfp_mask=h.gfp_mask if h else None,
        order=h.order if h else None,
        oom_score_adj=_header_adj(h),
    )


def _memcg(r: ReportState, oom_path: str | None, task_path: str | None) -> Memcg:
    mem = r.counters.get("memory")
    swap = r.counters.get("swap")
    memsw = r.counters.get("memory+swap")
    memcg = Memcg(
        oom_path=oom_path,
        task_path=task_path,
        usage_kb=mem.usage_kb if mem else None,
        limit_kb=mem.limit_kb if mem else None,
        failcnt=mem.failcnt if mem else None,
        swap_usage_kb=swap.usage_kb if swap else None,
        swap_limit_kb=swap.limit_kb if swap else None,
        memsw_usage_kb=memsw.usage_kb if memsw else None,
        memsw_limit_kb=memsw.limit_kb if memsw else None,
        memsw_failcnt=memsw.failcnt if memsw else None,
    )
    return memcg


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
    return Reaper(
        pid=rp.pid,
        comm=rp.comm,
        reaped=rp.reaped,
        anon_rss_kb=rp.anon_rss_kb,
        file_rss_kb=rp.file_rss_kb,
        shmem_rss_kb=rp.shmem_rss_kb,
    )


def _add_corner_cases(event: OomKillEvent, r: ReportState) -> None:
    event.exiting_victims = [ProcessRef(pid=x.pid, comm=x.comm) for x in r.exiting]
    if r.mm_pinned is not None:
        event.mm_pinned_by = ProcessRef(pid=r.mm_pinned.by_pid, comm=r.mm_pinned.by_comm)
    event.sysrq = r.is_sysrq()
    event.sysrq_ignored = r.sysrq_ignored


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


def build_event(
    r: ReportState, *, host: str | None, boot_id: str | None, lines: int | None = None
) -> OomKillEvent:
    """The event for a report as far as it has been read (its first `lines` lines kept, when
    given: a revision built after more lines were absorbed)."""
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
    kube = None
    for path in (task_path, oom_path):
        if path and (kube := identify(path)):
            break
    event = OomKillEvent(
        id=report_event_id(r, host, boot_id),
        time=first.wall.isoformat() if first.wall else None,
        mono_usec=first.mono_usec,
        host=host or first.host,
        boot_id=boot,
        seq=first.seq,
        lines=_wire_lines(r.lines[:lines] if lines is not None else list(r.lines)),
        constraint=constraint,
        global_oom=global_oom,
        trigger=_trigger(r),
        victim=victim(r, era, totalpages, rows),
        memcg=_memcg(r, oom_path, task_path) if memcg_oom or task_path is not None else None,
        kubernetes=kube,
        meminfo=_meminfo(r) if not memcg_oom and (r.meminfo or r.managed_kb) else None,
        tasks=tasks,
        reaper=_reaper(r.reaper),
        panic=r.panic is not None,
        group_kill=r.group_path is not None,
        group_victims=[killed_victim(k) for k in r.group_victims],
        complete=r.killed is not None,
        killed=r.killed is not None or bool(r.group_victims) or r.reaper is not None,
        report_suppressed=r.killed is not None and _kill_line_only(r),
        totalpages=totalpages,
        kernel_era=era,
    )
    event.lines_omitted = r.lines_omitted
    event.group_path = r.group_path
    _add_corner_cases(event, r)
    if kube is None:
        for path in (task_path, oom_path):
            if path and (owner := identify_container(path)):
                event.container = owner.owner()
                break
    return event
