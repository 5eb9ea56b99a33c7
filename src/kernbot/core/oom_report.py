"""Assemble the many records of one kernel OOM report into one `OomKillEvent`, live.

The kernel prints an OOM kill as 20 to thousands of records (header, stack, Mem-Info or memcg
counters, task table, `oom-kill:` summary, the kill line, and ~2 s later the reaper line), which
may be truncated, back to back, interleaved with other messages, or cut by `grep`. An alert
should go out the moment the kill line arrives, so the assembler emits then and re-emits the same
event id with a higher `revision` when later records (reaper, memory.oom.group kills) add to it.
Reports that never reach a kill line (panic_on_oom, truncation, fragments) are emitted on
`flush()` or when the next report starts, with `complete=False`.

Boundaries: a header (`… invoked oom-killer:`) always starts a report. Headerless fragments
start at any line that only an OOM report prints (memcg counters, `Task in`, task table, the
`oom-kill:` line, kill/reaper/panic lines). Before the kill line every record is kept in `lines`;
after it only follow-ups are absorbed, and a second kill line that is not part of a
memory.oom.group kill starts the next report. A 30 s gap in monotonic time, or 400 records in a
row that mean nothing to an OOM report, end a report that never reached its kill line.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import asdict, dataclass, field

from kernbot.core import oom_lines as ol
from kernbot.core.cgroup_identity import identify, identify_container
from kernbot.core.events import (
    MAX_LINES,
    Memcg,
    MemInfo,
    OomKillEvent,
    Reaper,
    Task,
    Trigger,
    Victim,
)
from kernbot.core.oom_score import ERA_ANCIENT, ERA_NEW, ERA_OLD, oom_score
from kernbot.core.record import Record
from kernbot.core.task_table import PAGE_KB, TableLayout, parse_row

GAP_USEC = 30_000_000
"""A report is printed within moments; a longer silence means the rest was lost."""
MAX_UNRECOGNISED_RUN = 400
RECENT_REPORTS = 16
"""Emitted reports kept for late follow-ups (the reaper line comes ~2 s after the kill)."""

_STARTERS = (
    ol.CpusetLine,
    ol.TaskIn,
    ol.Counter,
    ol.MemcgStats,
    ol.TasksState,
    ol.TableHeader,
    ol.OomKillLine,
    ol.KillProcess,
    ol.Killed,
    ol.ReaperLine,
    ol.OomGroup,
    ol.Panic,
)
"""Line kinds that begin a report when no header was seen (grep output, truncated logs)."""
_EVIDENCE = (ol.Header, *_STARTERS)
_IMPORTANT = (
    ol.Header,
    ol.OomKillLine,
    ol.KillProcess,
    ol.Killed,
    ol.ReaperLine,
    ol.OomGroup,
    ol.Panic,
    ol.TaskIn,
    ol.Counter,
)
_HEAD_LINES = MAX_LINES - 60


@dataclass
class _Report:
    """Everything parsed so far from one report's records."""

    first: Record
    lines: list[str] = field(default_factory=list)
    lines_omitted: int = 0
    header: ol.Header | None = None
    stack: ol.StackHeader | None = None
    cpuset: ol.CpusetLine | None = None
    managed_kb: int = 0
    meminfo: dict[str, int] = field(default_factory=dict)
    meminfo_flags: set[str] = field(default_factory=set)
    task_path: str | None = None
    oom_path: str | None = None
    wrapped_task_in: bool = False
    counters: dict[str, ol.Counter] = field(default_factory=dict)
    layout: TableLayout | None = None
    tasks: list[Task] = field(default_factory=list)
    oom_kill: ol.OomKillLine | None = None
    kill_process: ol.KillProcess | None = None
    killed: ol.Killed | None = None
    group_path: str | None = None
    group_victims: list[ol.Killed] = field(default_factory=list)
    reaper: ol.ReaperLine | None = None
    panic: ol.Panic | None = None
    evidence: bool = False
    unrecognised_run: int = 0
    last_mono: int | None = None
    last_event: OomKillEvent | None = None

    def keep_line(self, text: str, parsed: ol.Parsed | None) -> None:
        if len(self.lines) < _HEAD_LINES or (
            isinstance(parsed, _IMPORTANT) and len(self.lines) < MAX_LINES
        ):
            self.lines.append(text)
        else:
            self.lines_omitted += 1

    def victim_pids(self) -> set[int]:
        pids = {k.pid for k in self.group_victims}
        if self.killed:
            pids.add(self.killed.pid)
        return pids

    def absorb(self, rec: Record, parsed: ol.Parsed | None) -> None:
        self.keep_line(rec.text, parsed)
        if rec.mono_usec is not None:
            self.last_mono = rec.mono_usec
        if parsed is None:
            if self.layout is not None and (task := parse_row(self.layout, rec.text)):
                self.tasks.append(task)
                self.unrecognised_run = 0
                return
            if self.wrapped_task_in and self.oom_path is not None and self.oom_path.endswith("/"):
                piece = rec.text.strip()
                if piece and " " not in piece:
                    self.oom_path += piece
                self.wrapped_task_in = False
                return
            self.unrecognised_run += 1
            return
        self.unrecognised_run = 0
        self.wrapped_task_in = False
        if isinstance(parsed, _EVIDENCE):
            self.evidence = True
        self._apply(parsed)

    def _apply(self, p: ol.Parsed) -> None:
        match p:
            case ol.Header():
                self.header = p
            case ol.StackHeader():
                self.stack = self.stack or p
            case ol.CpusetLine():
                self.cpuset = p
            case ol.MemInfoLine(key="managed", value=v):
                self.managed_kb += v
            case ol.MemInfoLine(key="start" | "unstable" | "sec_pagetables" as key):
                self.meminfo_flags.add(key)
            case ol.MemInfoLine(key=key, value=v):
                self.meminfo.setdefault(key, v)
            case ol.TaskIn(task_path=t, oom_path=o, partial=partial):
                if t is not None:
                    self.task_path = t
                if o is not None:
                    self.oom_path = o
                self.wrapped_task_in = partial and o is not None
            case ol.Counter():
                self.counters.setdefault(p.name, p)
            case ol.TasksState():
                pass
            case ol.TableHeader(columns=cols):
                self.layout = TableLayout(cols)
            case ol.OomKillLine():
                self.oom_kill = p
            case ol.KillProcess(sharing=False):
                self.kill_process = self.kill_process or p
            case ol.Killed():
                if self.killed is None:
                    self.killed = p
                elif self.group_path is not None:
                    self.group_victims.append(p)
            case ol.ReaperLine():
                self.reaper = p
            case ol.OomGroup(path=path):
                self.group_path = path
            case ol.Panic():
                self.panic = p
            case _:
                pass


class OomAssembler:
    """Feed records in log order; get `OomKillEvent`s as soon as they are known.

    `feed()` returns the events emitted or updated by that record (a new report's header also
    closes the previous one); `flush()` at end of input or after an idle timeout emits what is
    still pending. An updated event keeps its `id` and has a higher `revision`.
    """

    def __init__(self, *, host: str | None = None, boot_id: str | None = None) -> None:
        self._host = host
        self._boot_id = boot_id
        self._open: _Report | None = None
        self._recent: deque[_Report] = deque(maxlen=RECENT_REPORTS)

    @property
    def pending(self) -> bool:
        """True while a report is being assembled and has not been emitted yet."""
        return self._open is not None and self._open.last_event is None

    def feed(self, rec: Record) -> list[OomKillEvent]:
        parsed = ol.parse_line(rec.text)
        out: list[OomKillEvent] = []
        r = self._open
        if r is not None and r.killed is None and self._stale(r, rec):
            out += self._close()
            r = None
        if isinstance(parsed, ol.Header):
            out += self._close()
            return out + self._start(rec, parsed)
        if isinstance(parsed, ol.ReaperLine):
            target = self._owner_of(parsed.pid)
            if target is not None:
                target.absorb(rec, parsed)
                return out + self._emit_if_changed(target)
        if r is None:
            if isinstance(parsed, _STARTERS):
                return out + self._start(rec, parsed)
            return out
        if r.killed is None:
            r.absorb(rec, parsed)
            if isinstance(parsed, ol.Killed):
                out += self._emit_if_changed(r)
            elif r.unrecognised_run >= MAX_UNRECOGNISED_RUN:
                out += self._close()
            return out
        # After the kill line: only follow-ups join; another report's line starts it.
        if isinstance(parsed, ol.OomGroup) or (
            isinstance(parsed, ol.KillProcess) and parsed.sharing
        ):
            r.absorb(rec, parsed)
            return out + self._emit_if_changed(r)
        if isinstance(parsed, ol.Killed) and r.group_path is not None:
            r.absorb(rec, parsed)
            return out + self._emit_if_changed(r)
        if isinstance(parsed, _STARTERS):
            out += self._close()
            return out + self._start(rec, parsed)
        return out

    def flush(self) -> list[OomKillEvent]:
        return self._close()

    def _stale(self, r: _Report, rec: Record) -> bool:
        return (
            rec.mono_usec is not None
            and r.last_mono is not None
            and rec.mono_usec - r.last_mono > GAP_USEC
        )

    def _owner_of(self, pid: int) -> _Report | None:
        """The report a reaper line for `pid` belongs to: its victim's, or an open fragment.

        A back-to-back report may already be open when the previous victim's reaper line comes,
        so victims are matched by pid before an open report without a kill line takes the line.
        """
        op = self._open
        if op is not None and pid in op.victim_pids():
            return op
        for r in reversed(self._recent):
            if pid in r.victim_pids():
                return r
        if op is not None and op.killed is None:
            return op
        return None

    def _start(self, rec: Record, parsed: ol.Parsed | None) -> list[OomKillEvent]:
        r = _Report(first=rec)
        self._open = r
        r.absorb(rec, parsed)
        if r.killed is not None:
            return self._emit_if_changed(r)
        return []

    def _close(self) -> list[OomKillEvent]:
        r, self._open = self._open, None
        if r is None:
            return []
        if r.last_event is not None:
            self._recent.append(r)
            return []
        if not r.evidence:
            return []
        self._recent.append(r)
        return self._emit_if_changed(r)

    def _emit_if_changed(self, r: _Report) -> list[OomKillEvent]:
        event = build_event(r, host=self._host, boot_id=self._boot_id)
        if r.last_event is not None:
            same = event.model_dump(exclude={"lines", "revision"}) == r.last_event.model_dump(
                exclude={"lines", "revision"}
            )
            if same:
                return []
            event.revision = r.last_event.revision + 1
        r.last_event = event
        return [event.model_copy(deep=True)]


def _event_id(r: _Report, host: str | None, boot_id: str | None) -> str:
    first = r.first
    if boot_id and first.seq is not None:
        return f"{boot_id}:{first.seq}"
    when = str(first.mono_usec) if first.mono_usec is not None else ""
    if not when and first.wall is not None:
        when = first.wall.isoformat()
    digest = hashlib.sha256(f"{host or ''}\x00{when}\x00{first.text}".encode()).hexdigest()
    return digest[:16]


def kernel_era(r: _Report) -> str | None:
    """Which oom_badness() formula the kernel that printed this report used, from its shape."""
    if r.stack and r.stack.version:
        v = r.stack.version
        return ERA_NEW if v >= (5, 9, 0) else ERA_OLD if v >= (2, 6, 36) else ERA_ANCIENT
    style = r.layout.style if r.layout else None
    if style == "pre-2.6.36" or (
        r.header and r.header.oom_adj is not None and r.header.oom_score_adj is None
    ):
        return ERA_ANCIENT
    if (r.stack and r.stack.style == "CPU-UID:") or style == "6.8+":
        return ERA_NEW
    if "sec_pagetables" in r.meminfo_flags:
        return ERA_NEW
    old_signs = (
        r.kill_process is not None,
        r.cpuset is not None,
        r.task_path is not None and r.oom_kill is None,
        style in ("2.6.36-3.7", "3.8-3.19", "4.0-4.14"),
        "unstable" in r.meminfo_flags,
        r.stack is not None and r.stack.style == "Pid:",
        r.header is not None and (r.header.has_nodemask or r.header.oom_adj is not None),
        r.killed is not None and r.killed.uid is None and r.killed.total_vm_kb is not None,
        r.killed is not None and r.killed.pgtables_kb is None and r.killed.total_vm_kb is not None,
    )
    if any(old_signs):
        return ERA_OLD
    return ERA_NEW if r.evidence else None


def _memcg_totalpages(r: _Report) -> int | None:
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


def _global_totalpages(r: _Report) -> int | None:
    if r.managed_kb:
        ram = r.managed_kb // PAGE_KB
    elif "pages_ram" in r.meminfo:
        ram = r.meminfo["pages_ram"] - r.meminfo.get("reserved", 0)
    else:
        return None
    return ram + r.meminfo.get("total_swap", 0) // PAGE_KB


def _is_memcg(r: _Report) -> bool:
    ok = r.oom_kill
    if ok is not None and (ok.constraint == "CONSTRAINT_MEMCG" or ok.oom_memcg is not None):
        return True
    return (
        r.oom_path is not None
        or "memory" in r.counters
        or (r.killed is not None and r.killed.memcg)
        or (r.kill_process is not None and r.kill_process.memcg)
    )


def _pgtables_fixed(killed: ol.Killed, row: Task | None) -> tuple[int | None, bool]:
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


def _victim(r: _Report, era: str | None, totalpages: int | None, rows: dict[int, Task]) -> Victim:
    v = Victim()
    k, kp, ok, rp = r.killed, r.kill_process, r.oom_kill, r.reaper
    if k is not None:
        v.pid, v.comm, v.uid = k.pid, k.comm, k.uid
        v.total_vm_kb, v.anon_rss_kb = k.total_vm_kb, k.anon_rss_kb
        v.file_rss_kb, v.shmem_rss_kb = k.file_rss_kb, k.shmem_rss_kb
        v.oom_score_adj = k.oom_score_adj
        v.pgtables_kb, fixed = _pgtables_fixed(k, rows.get(k.pid))
        if fixed:
            v.pgtables_bytes_labelled_kb = True  # type: ignore[attr-defined]
    elif kp is not None:
        v.pid, v.comm = kp.pid, kp.comm
    elif rp is not None:
        v.pid, v.comm = rp.pid, rp.comm
    elif ok is not None and ok.pid is not None:
        v.pid, v.comm = ok.pid, ok.task
    if ok is not None and ok.pid == v.pid and v.uid is None:
        v.uid = ok.uid
    if kp is not None and kp.score is not None:
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
            normalised_3x=_normalised_3x(r),
        )
    return v


def _normalised_3x(r: _Report) -> bool:
    if r.stack and r.stack.version:
        return (2, 6, 36) <= r.stack.version < (3, 8, 0)
    if r.layout is not None and r.layout.style == "2.6.36-3.7":
        return True
    return r.header is not None and r.header.oom_adj is not None


def _root_bonus_era(r: _Report) -> bool:
    if r.stack and r.stack.version:
        return (3, 14, 0) <= r.stack.version < (4, 17, 0) or (
            (2, 6, 36) <= r.stack.version < (3, 8, 0)
        )
    return r.layout is not None and r.layout.style in ("2.6.36-3.7", "3.8-3.19", "4.0-4.14")


def _header_adj(h: ol.Header | None) -> int | None:
    if h is None:
        return None
    return h.oom_score_adj if h.oom_score_adj is not None else h.oom_adj


def _killed_victim(k: ol.Killed) -> Victim:
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


def build_event(r: _Report, *, host: str | None, boot_id: str | None) -> OomKillEvent:
    """The event for a report as far as it has been read."""
    first = r.first
    boot = boot_id or first.boot_id
    era = kernel_era(r)
    memcg_oom = _is_memcg(r)
    totalpages = _memcg_totalpages(r) if memcg_oom else _global_totalpages(r)
    # CAP_SYS_ADMIN is not in the report; containers (memcg OOMs) rarely hold it, root hosts do.
    bonus_era = _root_bonus_era(r) and not memcg_oom
    norm = _normalised_3x(r)
    tasks: list[Task] = []
    for t in r.tasks:
        score = oom_score(
            era=era,
            rss_kb=t.rss_kb or 0,
            swapents_kb=t.swapents_kb or 0,
            pgtables_kb=t.pgtables_kb or 0,
            oom_score_adj=t.oom_score_adj or 0,
            totalpages=totalpages,
            root_bonus=bonus_era and t.uid == 0,
            normalised_3x=norm,
        )
        tasks.append(t.model_copy(update={"oom_score": score}))
    rows = {t.pid: t for t in tasks}
    ok = r.oom_kill
    h = r.header
    trigger = Trigger(
        comm=h.comm if h else (r.stack.comm if r.stack else None),
        pid=r.stack.pid if r.stack else None,
        gfp_mask=h.gfp_mask if h else None,
        order=h.order if h else None,
        oom_score_adj=_header_adj(h),
    )
    task_path = (ok.task_memcg if ok else None) or r.task_path
    oom_path = (ok.oom_memcg if ok else None) or r.oom_path
    memcg: Memcg | None = None
    if memcg_oom or task_path is not None:
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
        )
        if memsw is not None:
            memcg.memsw_usage_kb = memsw.usage_kb  # type: ignore[attr-defined]
            memcg.memsw_limit_kb = memsw.limit_kb  # type: ignore[attr-defined]
            memcg.memsw_failcnt = memsw.failcnt  # type: ignore[attr-defined]
    constraint = ok.constraint if ok else None
    if constraint is None and memcg_oom:
        constraint = "CONSTRAINT_MEMCG"
    global_oom = (ok.global_oom if ok else False) or (
        not memcg_oom and ("start" in r.meminfo_flags or r.managed_kb > 0)
    )
    meminfo: MemInfo | None = None
    if not memcg_oom and (r.meminfo or r.managed_kb):
        mi = r.meminfo
        meminfo = MemInfo(
            total_ram_kb=mi["pages_ram"] * PAGE_KB if "pages_ram" in mi else None,
            free_kb=mi["free"] * PAGE_KB if "free" in mi else None,
            total_swap_kb=mi.get("total_swap"),
            free_swap_kb=mi.get("free_swap"),
            reserved_kb=mi["reserved"] * PAGE_KB if "reserved" in mi else None,
        )
    kube = None
    for path in (task_path, oom_path):
        if path and (kube := identify(path)):
            break
    event = OomKillEvent(
        id=_event_id(r, host or first.host, boot),
        time=first.wall.isoformat() if first.wall else None,
        mono_usec=first.mono_usec,
        host=host or first.host,
        boot_id=boot,
        seq=first.seq,
        lines=list(r.lines),
        constraint=constraint,
        global_oom=global_oom,
        trigger=trigger,
        victim=_victim(r, era, totalpages, rows),
        memcg=memcg,
        kubernetes=kube,
        meminfo=meminfo,
        tasks=tasks,
        reaper=(
            Reaper(
                pid=r.reaper.pid,
                comm=r.reaper.comm,
                reaped=r.reaper.reaped,
                anon_rss_kb=r.reaper.anon_rss_kb,
                file_rss_kb=r.reaper.file_rss_kb,
                shmem_rss_kb=r.reaper.shmem_rss_kb,
            )
            if r.reaper
            else None
        ),
        panic=r.panic is not None,
        group_kill=r.group_path is not None,
        group_victims=[_killed_victim(k) for k in r.group_victims],
        complete=r.killed is not None,
        totalpages=totalpages,
        kernel_era=era,
    )
    if r.lines_omitted:
        event.lines_omitted = r.lines_omitted  # type: ignore[attr-defined]
    if r.group_path is not None:
        event.group_path = r.group_path  # type: ignore[attr-defined]
    if kube is None:
        for path in (task_path, oom_path):
            if path and (owner := identify_container(path)):
                event.container = asdict(owner)  # type: ignore[attr-defined]
                break
    return event
