"""One parser per kind of line in a kernel OOM report, 2.6.32 → 6.11+.

The report assembler needs to know what each record *is* before it can decide which report it
belongs to, so every line shape the kernel (and the distro backports) printed is recognised here,
with no state. Comms are hostile text: they are matched non-greedily up to the fixed token that
follows them, or greedily up to the last fixed token where the kernel prints one after the comm.
See tests/fixtures/corpus/PROVENANCE.md (section 1) for the catalogue these regexes follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

UNLIMITED_KB = 9007199254740988
"""What a memcg prints for an unlimited limit (PAGE_COUNTER_MAX pages, in kB)."""


@dataclass(frozen=True, slots=True)
class Header:
    comm: str
    gfp_mask: str
    order: int | None
    oom_score_adj: int | None
    oom_adj: int | None
    has_nodemask: bool


@dataclass(frozen=True, slots=True)
class CpusetLine:
    comm: str
    cpuset: str
    mems_allowed: str


@dataclass(frozen=True, slots=True)
class StackHeader:
    pid: int
    comm: str
    uid: int | None
    version: tuple[int, int, int] | None
    style: str
    """`Pid:` (≤3.9), `CPU:` (3.10+), `CPU-UID:` (6.11+)."""


@dataclass(frozen=True, slots=True)
class MemInfoLine:
    key: str
    """`start`, `managed`, `pages_ram`, `reserved`, `total_swap`, `free_swap`, `free`,
    `unstable`, `sec_pagetables`."""
    value: int = 0


@dataclass(frozen=True, slots=True)
class TaskIn:
    task_path: str | None
    oom_path: str | None
    partial: bool = False
    """The poster/mailer wrapped the line; the assembler joins the pieces."""


@dataclass(frozen=True, slots=True)
class Counter:
    name: str
    """`memory`, `memory+swap`, `kmem`, `swap`."""
    usage_kb: int
    limit_kb: int | None
    failcnt: int


@dataclass(frozen=True, slots=True)
class MemcgStats:
    path: str


@dataclass(frozen=True, slots=True)
class TasksState:
    pass


@dataclass(frozen=True, slots=True)
class TableHeader:
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OomKillLine:
    constraint: str | None
    nodemask: str | None
    cpuset: str | None
    mems_allowed: str | None
    oom_memcg: str | None
    global_oom: bool
    task_memcg: str | None
    task: str | None
    pid: int | None
    uid: int | None


@dataclass(frozen=True, slots=True)
class KillProcess:
    """`Kill process N (comm) score S or sacrifice child` (≤5.0) and `sharing same memory`."""

    pid: int
    comm: str
    score: int | None
    memcg: bool
    sharing: bool = False


@dataclass(frozen=True, slots=True)
class Killed:
    pid: int
    comm: str
    memcg: bool
    uid: int | None = None
    total_vm_kb: int | None = None
    anon_rss_kb: int | None = None
    file_rss_kb: int | None = None
    shmem_rss_kb: int | None = None
    pgtables_kb: int | None = None
    oom_score_adj: int | None = None


@dataclass(frozen=True, slots=True)
class ReaperLine:
    pid: int
    comm: str
    reaped: bool
    anon_rss_kb: int | None = None
    file_rss_kb: int | None = None
    shmem_rss_kb: int | None = None


@dataclass(frozen=True, slots=True)
class OomGroup:
    path: str


@dataclass(frozen=True, slots=True)
class Panic:
    text: str


@dataclass(frozen=True, slots=True)
class VictimExiting:
    """`<msg>: OOM victim %d (%s) is already exiting. Skip killing the task` (5.x+): the chosen
    task lost its mm before the kill, so no kill line follows for it."""

    pid: int
    comm: str


@dataclass(frozen=True, slots=True)
class MmPinned:
    """`oom killer %d (%s) has mm pinned by %d (%s)` (4.x+): init shares the victim's memory,
    so the reaper may not free it."""

    pid: int
    comm: str
    by_pid: int
    by_comm: str


@dataclass(frozen=True, slots=True)
class SysrqOom:
    """`sysrq: Manual OOM execution` (the line before a SysRq-f report), or, with `ignored`,
    `OOM request ignored. No task eligible` (5.x; 4.x said `because killer is disabled`)."""

    ignored: bool = False
    reason: str | None = None


Parsed = (
    Header
    | CpusetLine
    | StackHeader
    | MemInfoLine
    | TaskIn
    | Counter
    | MemcgStats
    | TasksState
    | TableHeader
    | OomKillLine
    | KillProcess
    | Killed
    | ReaperLine
    | OomGroup
    | Panic
    | VictimExiting
    | MmPinned
    | SysrqOom
)

HEADERLESS_STARTERS: tuple[type, ...] = (
    CpusetLine,
    TaskIn,
    Counter,
    MemcgStats,
    TasksState,
    TableHeader,
    OomKillLine,
    KillProcess,
    Killed,
    ReaperLine,
    OomGroup,
    Panic,
)
"""Line kinds only an OOM report prints: one begins a report when no header was seen (grep
output, truncated logs). `kernbot.core.prefilter.KEYWORDS` must find every one of them."""
REPORT_STARTERS: tuple[type, ...] = (Header, *HEADERLESS_STARTERS)
"""Every line kind that can begin a report: the header, or any headerless starter."""

_HEADER = re.compile(
    r"^(?P<comm>.*?) invoked oom-killer: gfp_mask=(?P<gfp>\S+?),"
    r"(?P<nodemask> nodemask=\S*?,)?\s+order=(?P<order>-?\d+)"
    r"(?:, oom_adj=(?P<oom_adj>-?\d+))?(?:, oomkilladj=(?P<oomkilladj>-?\d+))?"
    r"(?:, oom_score_adj=(?P<adj>-?\d+))?"
)
_CPUSET = re.compile(r"^(?P<comm>.*?) cpuset=(?P<cpuset>\S*) mems_allowed=(?P<mems>\S*)\s*$")
_STACK_CPU = re.compile(
    r"^CPU: \d+ (?:UID: (?P<uid>\d+) )?PID: (?P<pid>\d+) Comm: (?P<comm>.*?)"
    r" (?:Not tainted|Tainted:|Kdump:)(?P<rest>.*)$"
)
_STACK_PID = re.compile(
    r"^Pid: (?P<pid>\d+), comm: (?P<comm>.*?) (?:Not tainted|Tainted:)(?P<rest>.*)$"
)
_VERSION = re.compile(r"(?:^|\s)(\d+)\.(\d+)(?:\.(\d+))?[\w.+~-]*\s+#\d+")
_MEMINFO_START = re.compile(r"^Mem-[Ii]nfo:\s*$")
_ZONE = re.compile(r"^(?:Node \d+ )?\w+ free:\d+kB .*? managed:(\d+)kB")
_PAGES_RAM = re.compile(r"^(\d+) pages (?:of )?RAM\s*$")
_RESERVED = re.compile(r"^(\d+) (?:pages reserved|reserved pages)\s*$")
_TOTAL_SWAP = re.compile(r"^Total swap = (\d+)kB")
_FREE_SWAP = re.compile(r"^Free swap\s+=\s+(\d+)kB")
_FREE = re.compile(r"^\s*(?:active_anon:\d+.*\s)?free:(\d+)\s")
_UNSTABLE = re.compile(r"\bunstable:\d+")
_SEC_PGT = re.compile(r"^\s*sec_pagetables:\d+")
_TASK_IN = re.compile(r"^Task in (?P<task>\S+) killed as a result of limit of (?P<oom>\S+)\s*$")
_TASK_IN_HEAD = re.compile(r"^Task in (?P<task>\S+)\s*$")
_TASK_IN_TAIL = re.compile(r"^killed as a result of limit of (?P<oom>\S*)\s*$")
_LIMIT_REACHED = re.compile(r"^Memory limit reached of cgroup (?P<oom>\S+)\s*$")
_COUNTER = re.compile(
    r"^(?P<name>memory|memory\+swap|kmem|swap): usage (?P<usage>\d+)kB, limit (?P<limit>\d+)kB,"
    r" failcnt (?P<failcnt>\d+)"
)
_STATS = re.compile(r"^Memory cgroup stats for (?P<path>.*?):(?:\s|$)")
_TASKS_STATE = re.compile(r"^Tasks state \(memory values in pages\):")
_TABLE_HEADER = re.compile(r"^\[\s*pid\s*\]\s+(?P<cols>uid\s(?=.*tgid total_vm).*\bname)\s*$")
"""Every kernel's task table header holds `tgid total_vm` (2.6 to 6.x), and so must one taken
here: it is the keyword `kernbot.core.prefilter` finds a table header by, so a header without it
would start a report when every line is fed and none when lines are skipped."""
_OOM_KILL_HEAD = re.compile(
    r"^(?:constraint=(?P<constraint>[A-Z_]*))?(?:,?nodemask=(?P<nodemask>.*?))?"
    r"(?:,cpuset=(?P<cpuset>.*?))?(?:,mems_allowed=(?P<mems>.*?))?"
    r"(?:,oom_memcg=(?P<oom_memcg>.*?)|,(?P<global>global_oom))?(?:,task_memcg=(?P<task_memcg>.*))?$"
)
_OOM_KILL_TAIL = re.compile(r",task=(?P<task>.*?),pid=(?P<pid>-?\d+),uid=(?P<uid>\d+)\s*$")
_MSG = r"(?P<msg>Out of memory(?: \(oom_kill_allocating_task\))?|Memory cgroup out of memory)"
_KILL_PROCESS = re.compile(
    rf"^(?:{_MSG}: )?[Kk]ill process (?P<pid>\d+) \((?P<comm>.*)\) score (?P<score>-?\d+)"
    r" or (?:sacrifice child|a child)\s*$"
)
_KILL_SHARING = re.compile(r"^Kill process (?P<pid>\d+) \((?P<comm>.*)\) sharing same memory\s*$")
_KILLED = re.compile(
    rf"^(?:{_MSG}: )?Killed process (?P<pid>\d+)"
    r"(?:, UID (?P<uid6>\d+),)? \((?P<comm>.*)\)(?:, UID (?P<uid7>\d+),)?"
    r"(?P<rest>(?: (?:total-vm|vsz):.*)?)\s*$"
)
_KB = re.compile(r"(?P<key>total-vm|vsz|anon-rss|file-rss|shmem-rss|pgtables):(?P<v>\d+)kB")
_KILLED_5X = re.compile(
    r" total-vm:(\d+)kB, anon-rss:(\d+)kB, file-rss:(\d+)kB, shmem-rss:(\d+)kB,"
    r" UID:(\d+) pgtables:(\d+)kB oom_score_adj:(-?\d+)"
)
"""The kill line's tail as 5.x and 6.x print it (`__oom_kill_process`), read in one match."""
_KILLED_UID = re.compile(r"UID:(\d+)")
_KILLED_ADJ = re.compile(r"oom_score_adj:(-?\d+)")
"""Each searched as a word (`_word_search`: what `\\b` before it would say, without the
position-by-position scan a leading `\\b` costs)."""
_REAPED = re.compile(
    r"^oom_reaper: reaped process (?P<pid>\d+) \((?P<comm>.*)\), now anon-rss:(?P<anon>\d+)kB,"
    r" file-rss:(?P<file>\d+)kB, shmem-rss:(?P<shmem>\d+)kB"
)
_UNABLE = re.compile(r"^oom_reaper: unable to reap pid:(?P<pid>\d+) \((?P<comm>.*)\)\s*$")
_GROUP = re.compile(
    r"^Tasks in (?P<path>.*) are going to be killed due to memory\.oom\.group set\s*$"
)
_PANIC = re.compile(
    r"^Kernel panic - not syncing: (?:[Oo]ut of memory|Out of memory and no killable processes)"
)


_EXITING = re.compile(
    rf"^(?:{_MSG}: )?OOM victim (?P<pid>\d+) \((?P<comm>.*)\) is already exiting\."
    r" Skip killing the task\s*$"
)
_PINNED = re.compile(
    r"^oom killer (?P<pid>\d+) \((?P<comm>.*?)\) has mm pinned by (?P<by_pid>\d+)"
    r" \((?P<by_comm>.*)\)\s*$"
)
_SYSRQ_MANUAL = re.compile(r"^(?:sysrq: )?(?:SysRq ?: )?Manual OOM execution\s*$")
_SYSRQ_IGNORED = re.compile(r"^(?:sysrq: )?OOM request ignored[.]? (?P<reason>.*?)\s*$")


_MAY_START = frozenset("OMKkoTsSmCPF[")
"""First characters of every line kind below whose pattern is anchored at the start (`^Killed`,
`^(?:Out of memory: )?Kill`, `^oom_reaper: `, `^Tasks `, `^memory: usage`, `^\\[ pid ]`...);
a decimal digit (`^\\d+ pages RAM`) may start one too."""


def _anywhere(t: str) -> bool:
    """What the other kinds need somewhere: the header and cpuset lines start with a comm, the
    zone, `free:`, `sec_pagetables:` and `unstable:` Mem-Info lines with blanks or any word. A
    line that starts with none of `_MAY_START` and holds none of these is no report line."""
    return (
        " invoked oom-killer: " in t
        or " cpuset=" in t
        or "free:" in t
        or "managed:" in t
        or "sec_pagetables:" in t
        or "unstable:" in t
    )


PLAIN_WORDS: tuple[str, ...] = (
    " invoked oom-killer: ",
    " cpuset=",
    "free:",
    "managed:",
    "sec_pagetables:",
    "unstable:",
    "process ",
    "killed",
    "OOM",
    "oom killer ",
    "Memory limit reached of cgroup ",
)
"""`_anywhere`'s pieces and `_may_be_plain`'s: a text holding none of these that `is_plain` takes
by its shape is one of `parse_line`'s three quick Nones (a stack frame, a register dump, a
memory.stat line, a task table row). `kernbot.core.blocks` feeds runs of such lines at once."""
PLAIN_ANY_FIRST = frozenset(chr(c) for c in range(0x20, 0x7F)) - _MAY_START - set("0123456789")
"""First characters of a plain line that may hold anything but `PLAIN_WORDS` (ASCII only:
`str.isdecimal` is true for other scripts' digits)."""
PLAIN_NO_COLON_FIRST = _MAY_START - {"[", "T", "C"}
"""First characters of a plain line that holds no `:` and no `=` (`anon 4096`, `shmem 0`)."""
PLAIN_C_NOT = "CPU: "
"""A line starting with `C` is plain unless it starts with this (the stack header): of the
kinds `parse_any` tries, only that one starts with `C` and holds none of `PLAIN_WORDS`
(`Call Trace:`, `Code: …`)."""
_PLAIN_ROW = re.compile(r"\[ *\d+\]")


def is_plain(t: str) -> bool:
    """Whether `t` has a plain line's shape (see `PLAIN_WORDS`; the words are not checked here):
    the Python twin of the pattern `kernbot.core.blocks` matches whole runs of lines with.
    With no `PLAIN_WORDS` in `t`, `parse_line(t)` is None (tests check both on every corpus
    line and on generated ones)."""
    if not t:
        return False
    first = t[0]
    if first in PLAIN_ANY_FIRST:
        return True
    if first in PLAIN_NO_COLON_FIRST:
        return ":" not in t and "=" not in t
    if first == "C":
        return not t.startswith(PLAIN_C_NOT)
    return _PLAIN_ROW.match(t) is not None


def _int(s: str | None) -> int | None:
    return int(s) if s is not None else None


def _limit(kb: int) -> int | None:
    return None if kb >= UNLIMITED_KB else kb


@lru_cache(maxsize=32)
def _version(rest: str) -> tuple[int, int, int] | None:
    """The kernel version in a stack header's tail (taint flags, release, build): the same for
    every report of a boot, and the search has no fixed prefix to skip ahead with (~2.5 us)."""
    m = _VERSION.search(rest)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@lru_cache(maxsize=32)
def _oom_kill_head(head: str) -> dict[str, str | None]:
    """The fields of an `oom-kill:` line before `,task=` (its memcg and cpuset: the same for
    every kill of a cgroup in an OOM loop, and the lazy groups cost ~6 us a line). Callers
    only read the dict."""
    m = _OOM_KILL_HEAD.match(head)
    return m.groupdict() if m else {}


def _parse_oom_kill(body: str) -> OomKillLine:
    tail = _OOM_KILL_TAIL.search(body)
    g = _oom_kill_head(body[: tail.start()] if tail else body)
    return OomKillLine(
        constraint=g.get("constraint") or None,
        nodemask=g.get("nodemask"),
        cpuset=g.get("cpuset"),
        mems_allowed=g.get("mems"),
        oom_memcg=g.get("oom_memcg"),
        global_oom=bool(g.get("global")),
        task_memcg=g.get("task_memcg"),
        task=tail.group("task") if tail else None,
        pid=int(tail.group("pid")) if tail else None,
        uid=int(tail.group("uid")) if tail else None,
    )


def _word_search(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """`pattern` (starting with a word character) searched where a word starts, as `\\b`
    before it would: the first match not preceded by a word character."""
    at = 0
    while (m := pattern.search(text, at)) is not None:
        start = m.start()
        if start == 0 or not (text[start - 1].isalnum() or text[start - 1] == "_"):
            return m
        at = start + 1
    return None


def _parse_killed(m: re.Match[str]) -> Killed:
    pid, comm, msg, uid6, uid7, rest = m.group("pid", "comm", "msg", "uid6", "uid7", "rest")
    memcg = msg == "Memory cgroup out of memory"
    if uid6 is None and uid7 is None and (tail := _KILLED_5X.fullmatch(rest)):
        # The 5.x+ tail (each field once, `UID:` and `oom_score_adj:` after a blank): what the
        # general reading below gives, without its findall and two word searches.
        vm, anon, file, shmem, uid, pgtables, adj = map(int, tail.groups())
        return Killed(int(pid), comm, memcg, uid, vm, anon, file, shmem, pgtables, adj)
    return killed_general(m)


def killed_general(m: re.Match[str]) -> Killed:
    """`_parse_killed` for every shape of the kill line's tail (each era printed other fields)."""
    pid, comm, msg, uid6, uid7, rest = m.group("pid", "comm", "msg", "uid6", "uid7", "rest")
    memcg = msg == "Memory cgroup out of memory"
    rest = rest or ""
    kb = {key: int(v) for key, v in _KB.findall(rest)}
    uid_new = _word_search(_KILLED_UID, rest)
    adj_found = _word_search(_KILLED_ADJ, rest)
    return Killed(
        pid=int(pid),
        comm=comm,
        memcg=memcg,
        uid=_int(uid6 or uid7 or (uid_new.group(1) if uid_new else None)),
        total_vm_kb=kb.get("total-vm", kb.get("vsz")),
        anon_rss_kb=kb.get("anon-rss"),
        file_rss_kb=kb.get("file-rss"),
        shmem_rss_kb=kb.get("shmem-rss"),
        pgtables_kb=kb.get("pgtables"),
        oom_score_adj=_int(adj_found.group(1)) if adj_found else None,
    )


def parse_line(text: str) -> Parsed | None:
    """What kind of OOM-report line `text` is, with its fields; None for anything else.

    Most lines of a report (stack frames, task table rows, memcg stats, registers) are none of
    these kinds, so every pattern is guarded by a fixed substring that any line it matches must
    contain: a line costs a few `in`/`startswith` tests instead of ~26 regex matches. The
    patterns are tried in the same order as before, so the result is the same.
    """
    t = text.rstrip("\r\n") if text[-1:] in ("\n", "\r") else text
    if not t:
        return None
    first = t[0]
    if first not in _MAY_START and not first.isdecimal() and not _anywhere(t):
        return None  # a stack frame, a register dump, a memory.stat line...
    if first == "[" and " invoked oom-killer: " not in t and " cpuset=" not in t:
        # A task table row: of the anchored kinds only the table header starts with `[`.
        if "pid" in t and (m := _TABLE_HEADER.match(t)):
            return TableHeader(columns=tuple(m.group("cols").split()))
        if "unstable:" not in t:
            return None
    if ":" not in t and "=" not in t and not _may_be_plain(t, first):
        return None  # a memory.stat line (`shmem 6879`): `_parse_plain` would find nothing
    seen = _SEEN
    if t in seen:
        return seen[t]
    try:
        found = parse_any(t)
    except ValueError:
        # A number longer than Python converts (`sys.get_int_max_str_digits()`, 4,300 digits):
        # no kernel prints one, so the line is read as one of no kind, like any garbled line.
        found = None
    if len(t) <= SEEN_LINE_MAX:
        seen[t] = found
        if len(seen) > SEEN_LINES:
            seen.clear()
    return found


SEEN_LINES = 1024
"""Lines `parse_line` remembers what it read from (`parse_any` is a pure function of the text and
its results are frozen): a node in an OOM loop prints the same header, swap counter, `Memory
cgroup stats for`, `Tasks state` and table header lines kill after kill."""
SEEN_LINE_MAX = 1024
"""Longer lines are not remembered (an OOM report's are shorter; a log file's line may be a MiB):
the memory stays at most ~1 MB of text."""
_SEEN: dict[str, Parsed | None] = {}


def _may_be_plain(t: str, first: str) -> bool:
    """What each kind `_parse_plain` tries needs: a kill line `process `, the group and `Task
    in` lines `killed` or a `T`, the rare ones `OOM`/`oom killer `, a table header `[`, the
    `pages RAM`/`reserved` lines a leading digit, and `Memory limit reached of cgroup `."""
    return (
        first in "[T"
        or first.isdecimal()
        or "process " in t
        or "killed" in t
        or "OOM" in t
        or "oom killer " in t
        or t.startswith("Memory limit reached of cgroup ")
    )


def parse_any(t: str) -> Parsed | None:
    """`parse_line` without its first test (which only says when this would return None)."""
    if ":" not in t and "=" not in t:
        return _parse_plain(t)
    if " invoked oom-killer: " in t and (m := _HEADER.match(t)):
        oom_adj = m.group("oom_adj") or m.group("oomkilladj")
        return Header(
            comm=m.group("comm"),
            gfp_mask=m.group("gfp"),
            order=int(m.group("order")),
            oom_score_adj=_int(m.group("adj")),
            oom_adj=_int(oom_adj),
            has_nodemask=m.group("nodemask") is not None,
        )
    if t.startswith("oom-kill:"):
        return _parse_oom_kill(t[len("oom-kill:") :].rstrip())
    if "ill process " in t or "illed process " in t:
        kill = _parse_kill(t)
        if kill is not None:
            return kill
    if t.startswith("oom_reaper: "):
        if m := _REAPED.match(t):
            return ReaperLine(
                pid=int(m.group("pid")),
                comm=m.group("comm"),
                reaped=True,
                anon_rss_kb=int(m.group("anon")),
                file_rss_kb=int(m.group("file")),
                shmem_rss_kb=int(m.group("shmem")),
            )
        if m := _UNABLE.match(t):
            return ReaperLine(pid=int(m.group("pid")), comm=m.group("comm"), reaped=False)
    if "are going to be killed" in t and (m := _GROUP.match(t)):
        return OomGroup(path=m.group("path"))
    if t.startswith("Kernel panic - not syncing: ") and _PANIC.match(t):
        return Panic(text=t.strip())
    if "OOM" in t or "oom killer " in t:
        rare = _parse_rare(t)
        if rare is not None:
            return rare
    if "kB, limit " in t and (m := _COUNTER.match(t)):
        return Counter(
            name=m.group("name"),
            usage_kb=int(m.group("usage")),
            limit_kb=_limit(int(m.group("limit"))),
            failcnt=int(m.group("failcnt")),
        )
    task_in = _parse_task_in(t)
    if task_in is not None:
        return task_in
    if t.startswith("Memory cgroup stats for ") and (m := _STATS.match(t)):
        return MemcgStats(path=m.group("path"))
    if t.startswith("Tasks state (memory values in pages):"):
        return TasksState()
    if t.startswith("CPU: ") and (m := _STACK_CPU.match(t)):
        return StackHeader(
            pid=int(m.group("pid")),
            comm=m.group("comm"),
            uid=_int(m.group("uid")),
            version=_version(m.group("rest")),
            style="CPU-UID:" if m.group("uid") is not None else "CPU:",
        )
    if t.startswith("Pid: ") and (m := _STACK_PID.match(t)):
        return StackHeader(
            pid=int(m.group("pid")),
            comm=m.group("comm"),
            uid=None,
            version=_version(m.group("rest")),
            style="Pid:",
        )
    if " cpuset=" in t and (m := _CPUSET.match(t)):
        return CpusetLine(
            comm=m.group("comm"), cpuset=m.group("cpuset"), mems_allowed=m.group("mems")
        )
    return _parse_meminfo(t)


def _parse_plain(t: str) -> Parsed | None:
    """A line with neither `:` nor `=`: only these kinds can print one."""
    if "ill process " in t or "illed process " in t:
        kill = _parse_kill(t)
        if kill is not None:
            return kill
    if "are going to be killed" in t and (m := _GROUP.match(t)):
        return OomGroup(path=m.group("path"))
    if "OOM" in t or "oom killer " in t:
        rare = _parse_rare(t)
        if rare is not None:
            return rare
    task_in = _parse_task_in(t)
    if task_in is not None:
        return task_in
    if t[0] == "[" and "pid" in t and (m := _TABLE_HEADER.match(t)):
        return TableHeader(columns=tuple(m.group("cols").split()))
    if "RAM" in t and (m := _PAGES_RAM.match(t)):
        return MemInfoLine("pages_ram", int(m.group(1)))
    if "reserved" in t and (m := _RESERVED.match(t)):
        return MemInfoLine("reserved", int(m.group(1)))
    return None


def _parse_kill(t: str) -> KillProcess | Killed | None:
    if m := _KILLED.match(t):
        return _parse_killed(m)
    if m := _KILL_PROCESS.match(t):
        return KillProcess(
            pid=int(m.group("pid")),
            comm=m.group("comm"),
            score=int(m.group("score")),
            memcg=m.group("msg") == "Memory cgroup out of memory",
        )
    if m := _KILL_SHARING.match(t):
        return KillProcess(
            pid=int(m.group("pid")), comm=m.group("comm"), score=None, memcg=False, sharing=True
        )
    return None


def _parse_task_in(t: str) -> TaskIn | TableHeader | None:
    if t.startswith("Task in "):
        if m := _TASK_IN.match(t):
            return TaskIn(task_path=m.group("task"), oom_path=m.group("oom"))
        if m := _TASK_IN_HEAD.match(t):
            return TaskIn(task_path=m.group("task"), oom_path=None, partial=True)
    elif t.startswith("killed as a result of limit of "):
        if m := _TASK_IN_TAIL.match(t):
            return TaskIn(task_path=None, oom_path=m.group("oom"), partial=True)
    elif t.startswith("Memory limit reached of cgroup "):
        if m := _LIMIT_REACHED.match(t):
            return TaskIn(task_path=None, oom_path=m.group("oom"))
    elif t[0] == "[" and "pid" in t and (m := _TABLE_HEADER.match(t)):
        return TableHeader(columns=tuple(m.group("cols").split()))
    return None


def _parse_rare(t: str) -> VictimExiting | MmPinned | SysrqOom | None:
    """Lines a report prints only in corner cases: skipped victims, pinned mm, SysRq-f."""
    if m := _EXITING.match(t):
        return VictimExiting(pid=int(m.group("pid")), comm=m.group("comm"))
    if m := _PINNED.match(t):
        return MmPinned(
            pid=int(m.group("pid")),
            comm=m.group("comm"),
            by_pid=int(m.group("by_pid")),
            by_comm=m.group("by_comm"),
        )
    if _SYSRQ_MANUAL.match(t):
        return SysrqOom()
    if m := _SYSRQ_IGNORED.match(t):
        return SysrqOom(ignored=True, reason=m.group("reason"))
    return None


def _parse_meminfo(t: str) -> MemInfoLine | None:
    if t.startswith("Mem-") and _MEMINFO_START.match(t):
        return MemInfoLine("start")
    if "managed:" in t and (m := _ZONE.match(t)):
        return MemInfoLine("managed", int(m.group(1)))
    if "RAM" in t and (m := _PAGES_RAM.match(t)):
        return MemInfoLine("pages_ram", int(m.group(1)))
    if "reserved" in t and (m := _RESERVED.match(t)):
        return MemInfoLine("reserved", int(m.group(1)))
    if t.startswith("Total swap = ") and (m := _TOTAL_SWAP.match(t)):
        return MemInfoLine("total_swap", int(m.group(1)))
    if "swap" in t and (m := _FREE_SWAP.match(t)):
        return MemInfoLine("free_swap", int(m.group(1)))
    if "sec_pagetables:" in t and _SEC_PGT.match(t):
        return MemInfoLine("sec_pagetables")
    if "free:" in t and (m := _FREE.match(t)):
        return MemInfoLine("free", int(m.group(1)))
    if "unstable:" in t and "writeback:" in t and _UNSTABLE.search(t):
        return MemInfoLine("unstable")
    return None
