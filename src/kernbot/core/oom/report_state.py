"""What has been read so far of one kernel OOM report: the parsed lines, folded into fields.

The assembler (`kernbot.core.oom.report`) decides which report a record belongs to; this module
only remembers what each record said, so an event can be built from a report at any moment
(`kernbot.core.oom.event`). Lines no parser knows still matter here: task table rows (the table
header says which columns follow) and the tail of a `Task in` line that a mailer wrapped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernbot.core.events import MAX_LINES
from kernbot.core.oom import lines as ol
from kernbot.core.oom.task_table import TableLayout, TaskRow, parse_row, table_layout
from kernbot.core.record import Record

EVIDENCE = ol.REPORT_STARTERS
"""A report with none of these lines (a stack header and Mem-Info alone) is not an OOM report."""
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
    ol.VictimExiting,
    ol.MmPinned,
    ol.SysrqOom,
)
"""Kept in `lines` even past the head budget: the lines a reader of the alert looks for."""
_HEAD_LINES = MAX_LINES - 60


@dataclass
class ReportState:
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
    tasks: list[TaskRow] = field(default_factory=list)
    oom_kill: ol.OomKillLine | None = None
    kill_process: ol.KillProcess | None = None
    killed: ol.Killed | None = None
    group_path: str | None = None
    group_victims: list[ol.Killed] = field(default_factory=list)
    reaper: ol.ReaperLine | None = None
    panic: ol.Panic | None = None
    exiting: list[ol.VictimExiting] = field(default_factory=list)
    mm_pinned: ol.MmPinned | None = None
    manual: bool = False
    """The report follows `sysrq: Manual OOM execution` (set by the assembler)."""
    sysrq_ignored: str | None = None
    evidence: bool = False
    unrecognised_run: int = 0
    last_mono: int | None = None
    emitted: bool = False
    """An event (or a deferred one) was emitted for this report."""
    last_id: str | None = None
    last_revision: int = -1
    last_fingerprint: tuple[object, ...] | None = None

    def fingerprint(self) -> tuple[object, ...]:
        """Everything `build_event` reads except `lines`: equal fingerprints, equal events.

        Comparing this tuple (frozen parsed lines, counts of append-only lists) replaces dumping
        and comparing two whole events, and lets the emitted event be handed out without a deep
        copy: the assembler never reads an emitted event again.
        """
        return (
            self.header,
            self.stack,
            self.cpuset,
            self.managed_kb,
            tuple(self.meminfo.items()),
            frozenset(self.meminfo_flags),
            self.task_path,
            self.oom_path,
            tuple(self.counters.items()),
            len(self.tasks),
            self.oom_kill,
            self.kill_process,
            self.killed,
            self.group_path,
            len(self.group_victims),
            self.reaper,
            self.panic,
            len(self.exiting),
            self.mm_pinned,
            self.manual,
            self.sysrq_ignored,
            self.lines_omitted,
        )

    def keep_line(self, text: str, parsed: ol.Parsed | None) -> None:
        if len(self.lines) < _HEAD_LINES or (
            isinstance(parsed, _IMPORTANT) and len(self.lines) < MAX_LINES
        ):
            self.lines.append(text)
        else:
            self.lines_omitted += 1

    def is_sysrq(self) -> bool:
        """A manual OOM: after the SysRq line, or with the `order=-1` moom_callback asks for."""
        return self.manual or (self.header is not None and self.header.order == -1)

    def victim_pids(self) -> set[int]:
        pids = {k.pid for k in self.group_victims}
        if self.killed:
            pids.add(self.killed.pid)
        elif self.reaper is not None:
            pids.add(self.reaper.pid)  # a stray reaper line's report takes that pid's repeats
        return pids

    def absorb(self, rec: Record, parsed: ol.Parsed | None) -> None:
        text = rec.text
        if len(self.lines) < _HEAD_LINES:  # `keep_line`'s common case
            self.lines.append(text)
        else:
            self.keep_line(text, parsed)
        if rec.mono_usec is not None:
            self.last_mono = rec.mono_usec
        if parsed is None:
            if self.layout is not None and (task := parse_row(self.layout, text)):
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
        if not self.evidence and isinstance(parsed, EVIDENCE):
            self.evidence = True
        self._apply(parsed)

    def absorb_plain(self, texts: list[str], last_mono: int) -> None:
        """`absorb(rec, None)` for records of these texts, the last at `last_mono`: lines
        `parse_line` says None for (`kernbot.core.blocks`), with `wrapped_task_in` unset."""
        lines = self.lines
        n = len(texts)
        room = _HEAD_LINES - len(lines)
        if room >= n:
            lines.extend(texts)
        else:
            if room > 0:
                lines.extend(texts[:room])
            self.lines_omitted += n - max(room, 0)
        self.last_mono = last_mono
        layout = self.layout
        if layout is None:
            self.unrecognised_run += n
            return
        run = self.unrecognised_run
        tasks = self.tasks
        for text in texts:
            if text[0] == "[" and (task := parse_row(layout, text)):
                tasks.append(task)
                run = 0
            else:
                run += 1
        self.unrecognised_run = run

    def _apply(self, p: ol.Parsed) -> None:
        # Kinds in the order an OOM loop's memcg reports print them (no kind subclasses another,
        # so the order of their cases changes nothing but how many are tried).
        match p:
            case ol.Header():
                self.header = p
            case ol.StackHeader():
                self.stack = self.stack or p
            case ol.Counter():
                self.counters.setdefault(p.name, p)
            case ol.MemcgStats() | ol.TasksState():
                pass
            case ol.TableHeader(columns=cols):
                self.layout = table_layout(cols)
            case ol.OomKillLine():
                self.oom_kill = p
            case ol.Killed():
                if self.killed is None:
                    self.killed = p
                elif self.group_path is not None:
                    self.group_victims.append(p)
            case ol.ReaperLine():
                self.reaper = p
            case ol.MemInfoLine(key="managed", value=v):
                self.managed_kb += v
            case ol.MemInfoLine(key="start" | "unstable" | "sec_pagetables" as key):
                self.meminfo_flags.add(key)
            case ol.MemInfoLine(key=key, value=v):
                self.meminfo.setdefault(key, v)
            case ol.CpusetLine():
                self.cpuset = p
            case ol.TaskIn(task_path=t, oom_path=o, partial=partial):
                if t is not None:
                    self.task_path = t
                if o is not None:
                    self.oom_path = o
                self.wrapped_task_in = partial and o is not None
            case ol.KillProcess(sharing=False):
                self.kill_process = self.kill_process or p
            case ol.OomGroup(path=path):
                self.group_path = path
            case ol.Panic():
                self.panic = p
            case ol.VictimExiting():
                self.exiting.append(p)
            case ol.MmPinned():
                self.mm_pinned = self.mm_pinned or p
            case ol.SysrqOom(ignored=True, reason=reason) if self.is_sysrq():
                self.sysrq_ignored = reason
            case _:
                pass
