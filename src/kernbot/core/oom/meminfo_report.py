"""The memory numbers of an OOM report, read back from its raw lines (`event.lines`).

`show_free_areas()` (mm/show_mem.c; lib/show_mem.c before 6.1; mm/page_alloc.c before that)
prints a page-count block after `Mem-Info:` (`active_anon:… shmem:… slab_unreclaimable:…
pagetables:… free:…`; syslog may join it into one line with `#012`), per-node kB lines (4.8+:
`Node 0 active_anon:…kB … kernel_stack:…kB`), per-zone lines with the watermarks (`Node 0
Normal free:…kB min:…kB low:…kB high:…kB … managed:…kB`; kernel_stack and slab sat here before
4.8; ARM without NUMA drops the `Node 0 ` prefix), the buddy free lists (`Node 0 Normal:
12*4kB (UME) … = 123kB`), `hugetlb_show_meminfo()`'s per-node `hugepages_total=…`, then
`show_swap_cache_info()` and `show_mem()` (`Free swap`, `Total swap`, `N pages RAM`, `N pages
reserved` / `N reserved pages`). `dump_unreclaimable_slab()` (4.15+) adds a `Name Used Total`
table when unreclaimable slab outgrows user memory. A memory cgroup OOM prints instead the page
counters (`memory: usage …kB, limit …kB, failcnt …`, `memory+swap:`, `swap:`, `kmem:`) and
`Memory cgroup stats for PATH:` — cgroup v1 as ` key:NKB` tokens on the same line, once per
cgroup of the subtree (local values) or with `total_` keys; cgroup v2 as memory.stat's `key N`
lines in bytes. Every number keeps the index of the line it came from, so a finding can cite it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice

from kernbot.core.oom.task_table import PAGE_KB

UNLIMITED_KB = 1 << 50
"""A limit this large is PAGE_COUNTER_MAX (`9007199254740988kB`): no limit at all."""

_MEMINFO_KEYS = frozenset(
    {"active_anon", "inactive_anon", "active_file", "inactive_file", "slab_reclaimable"}
)
_PAGES_TOKEN = re.compile(r"(?<![\w(])([a-z_]+):(\d+)(?![\d\w])")
_PAGES_HINT = re.compile(r"[a-z_]:\d")
"""What every `_PAGES_TOKEN` holds: a cheap search first spares register dumps (`RAX: …`) the
lookbehind scan."""
_PREFIXES = (
    "memory",
    "swap",
    "kmem",
    "Memory cgroup stats for ",
    "Node ",
    "DMA",
    "Normal",
    "HighMem",
    "Movable",
    "Device",
    "Free swap",
    "Total swap",
    "Unreclaimable slab info",
)
"""How every anchored pattern below begins (the memory/swap/kmem counters, the stats header, the
node, zone and free-list lines, the swap lines, the slab header); the others begin with a digit.
Keep in step with them."""
_ANCHORS = frozenset(p[0] for p in _PREFIXES)
"""Their first characters: one set lookup before the prefixes are compared."""
_COLON_DIGIT = re.compile(r":\d")
"""Part of every `_PAGES_HINT`: a search that starts from a literal runs ~10x faster on a long
line (the `oom-kill:` line) than one that starts from a character class."""
_KB_TOKEN = re.compile(r"([a-z_()]+):(\d+)kB", re.IGNORECASE)
_ZONE = re.compile(
    r"^(?:Node (?P<node>\d+) )?(?P<zone>DMA|DMA32|Normal|HighMem|Movable|Device)"
    r" free:(?P<free>\d+)kB"
)
_NODE = re.compile(r"^Node (?P<node>\d+) active_anon:\d+kB")
_FREE_LIST = re.compile(
    r"^(?:Node (?P<node>\d+) )?(?P<zone>DMA|DMA32|Normal|HighMem|Movable|Device): "
    r"(?P<blocks>(?:\d+\*\d+kB.*?)+)= (?P<total>\d+)kB"
)
_BLOCK = re.compile(r"(\d+)\*(\d+)kB")
_HUGE = re.compile(
    r"^Node (?P<node>\d+) hugepages_total=(?P<total>\d+) hugepages_free=(?P<free>\d+)"
    r" hugepages_surp=\d+ hugepages_size=(?P<size>\d+)kB"
)
_SWAP = re.compile(r"^(?P<which>Free|Total) swap\s*=\s*(?P<kb>\d+)kB")
_RAM = re.compile(r"^(?P<n>\d+) pages (?:of )?RAM$")
_RESERVED = re.compile(r"^(?P<n>\d+) (?:pages reserved|reserved pages)$")
_PAGECACHE = re.compile(r"^(?P<n>\d+) total pagecache pages")
_COUNTER = re.compile(
    r"^(?P<name>memory|memory\+swap|swap|kmem|kmem\.tcp): usage (?P<usage>\d+)kB, "
    r"limit (?P<limit>\d+)kB, failcnt (?P<failcnt>\d+)"
)
_STATS = re.compile(r"^Memory cgroup stats for (?P<path>\S*?):(?P<rest>.*)$")
_V1_TOKEN = re.compile(r"([a-z_]+):(\d+)KB")
_V2_LINE = re.compile(r"^\s*(?P<key>[a-z_]+) (?P<value>\d+)\s*$")
_V2_RUN = re.compile(r"(?:[^\S\n]*+[a-z_]++ \d++[^\S\n]*+(?:\n|\Z))*+")
"""A run of `_V2_LINE` lines joined by newlines (none of them holding one); possessive, as each
piece ends where the next begins (~10% faster)."""
_V2_PLAIN_RUN = re.compile(r"(?:[a-z_]++ [0-9]++\n)*+")
"""The lines of a `_V2_RUN` as the kernel prints them (no other whitespace, ASCII digits, a
newline after each): each is one piece of `_V2_RUN`, so `_V2_RUN` goes on from where this
stops (its end is `_V2_RUN`'s); 3.4 -> 1.5 us for a 41-line block."""
_SLAB_ROW = re.compile(r"^\s*(?P<name>\S+)\s+(?P<used>\d+)KB\s+(?P<total>\d+)KB\s*$")


# The records below are not frozen: a frozen dataclass sets each field through
# object.__setattr__ (~3.5x the cost of a plain one); nothing changes them after parse_report.
@dataclass(slots=True)
class Zone:
    node: int
    name: str
    free_kb: int
    min_kb: int | None
    low_kb: int | None
    high_kb: int | None
    managed_kb: int | None
    values_kb: dict[str, int]
    line: int


@dataclass(slots=True)
class FreeList:
    node: int
    zone: str
    blocks: dict[int, int]
    """Block size in kB -> how many free blocks of that size."""
    total_kb: int
    line: int

    def largest_order_kb(self) -> int:
        sizes = [size for size, count in self.blocks.items() if count > 0]
        return max(sizes) if sizes else 0


@dataclass(slots=True)
class HugePool:
    node: int
    total: int
    free: int
    size_kb: int
    line: int


@dataclass(slots=True)
class PageCounter:
    usage_kb: int
    limit_kb: int | None
    failcnt: int
    line: int


@dataclass(slots=True, eq=False)
class StatsBlock:
    path: str
    tokens_kb: dict[str, int]
    """cgroup v1's ` key:NKB` tokens on the header line."""
    line: int
    v2: bool
    printed: dict[str, str] = field(default_factory=dict)
    """A cgroup v2 header's memory.stat lines: key -> the number of bytes as printed. In kB
    when asked for (`values_kb`, `kb`): the accounting reads 15 of the ~40 (int() and a
    division each, ~80 ns)."""
    converted: dict[str, int] | None = None

    @property
    def values_kb(self) -> dict[str, int]:
        """Every value in kB, in the order printed."""
        if not self.printed:
            return self.tokens_kb
        if self.converted is None:
            kb = {k: int(v) // 1024 for k, v in self.printed.items()}
            self.converted = {**self.tokens_kb, **kb}
        return self.converted

    def kb(self, keys: tuple[str, ...]) -> dict[str, int]:
        """`values_kb` of these keys (those printed), converting only them."""
        printed, tokens = self.printed, self.tokens_kb
        if self.converted is not None or tokens:
            values = self.values_kb
            return {k: values[k] for k in keys if k in values}
        return {k: int(printed[k]) // 1024 for k in keys if k in printed}

    def has_values(self) -> bool:
        return bool(self.tokens_kb or self.printed)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatsBlock):
            return NotImplemented
        mine = (self.path, self.values_kb, self.line, self.v2)
        return mine == (other.path, other.values_kb, other.line, other.v2)

    __hash__ = None  # type: ignore[assignment]  # as a dataclass with eq and not frozen


@dataclass(slots=True)
class SlabCache:
    name: str
    used_kb: int
    total_kb: int
    line: int


@dataclass(slots=True)
class MemReport:
    """What the report printed about memory; absent sections stay empty or None."""

    pages: dict[str, int] = field(default_factory=dict)
    """The Mem-Info page-count block (`shmem`, `free`, `slab_unreclaimable`...), in pages."""
    pages_line: int | None = None
    pages_last: int | None = None
    nodes: dict[int, tuple[dict[str, int], int]] = field(default_factory=dict)
    """Per-node kB values (4.8+) and their line."""
    zones: list[Zone] = field(default_factory=list)
    free_lists: list[FreeList] = field(default_factory=list)
    huge: list[HugePool] = field(default_factory=list)
    swap_free_kb: tuple[int, int] | None = None
    swap_total_kb: tuple[int, int] | None = None
    ram_pages: tuple[int, int] | None = None
    reserved_pages: tuple[int, int] | None = None
    pagecache_pages: tuple[int, int] | None = None
    counters: dict[str, PageCounter] = field(default_factory=dict)
    stats: list[StatsBlock] = field(default_factory=list)
    slab_caches: list[SlabCache] = field(default_factory=list)

    @property
    def has_meminfo(self) -> bool:
        return bool(self.pages)


def _clean(text: str) -> str:
    if "#01" not in text:
        return text.rstrip()
    return text.replace("#012", " ").replace("#011", " ").rstrip()


def parse_report(lines: list[str], *, memcg: bool = False) -> MemReport:
    """Every memory number in `lines`; unknown lines are skipped, nothing raises. With `memcg`,
    only what a memory cgroup's accounting and diagnosis read: `counters`, `stats` and
    `slab_caches` are as without it, the rest may be missing (`parse_memcg_part`).

    Every pattern but one is anchored, and each anchored one begins with one of `_PREFIXES`
    or a digit (`memory: usage`, `Node 0 Normal free:`, `Free swap`...): a line that begins
    otherwise can only hold Mem-Info page counts (`shmem:12`), and most lines of a report
    (stack frames, registers, task rows) hold none. Such a line costs a strip and a few
    substring tests instead of the general path (`_read_line`), which
    `parse_report_reference` runs on every line (tests compare them).
    """
    if memcg:
        return parse_memcg_part(lines)
    rep = MemReport()
    in_slab = False
    anchors, prefixes = _ANCHORS, _PREFIXES
    at = enumerate(lines)
    for i, raw in at:
        if not in_slab and ("#" not in raw or "#01" not in raw):  # memchr first
            head = raw.lstrip()
            first = head[:1]
            if (
                not (first in anchors and head.startswith(prefixes))
                and not first.isdecimal()
                and (
                    ":" not in raw
                    or "kB" in raw
                    or "CPU" in raw
                    or _COLON_DIGIT.search(raw) is None
                    or _PAGES_HINT.search(raw) is None
                    or _PAGES_TOKEN.search(raw) is None
                )
            ):
                continue  # no pattern can take it: see the docstring
        in_slab, end = _read_line(rep, lines, i, in_slab)
        if end > i + 1:  # a cgroup v2 memory.stat block, read by `_read_line`
            next(islice(at, end - i - 2, None), None)
    return rep


_MEMCG_PREFIXES = (
    "memory",
    "swap",
    "kmem",
    "Memory cgroup stats for ",
    "Unreclaimable slab info",
)
"""How the lines that hold `counters` (`_COUNTER`), `stats` (`_STATS`) or open the slab table
begin; a stats header's memory.stat block and the slab table's rows follow it."""
_COUNTERS = ("memory", "swap", "kmem")
"""How a page counter line begins; no such line is a stats or slab header (`_read_line` for one
comes to `_parse_memcg` and `_parse_global` on the stripped text)."""


def parse_memcg_part(lines: list[str]) -> MemReport:
    """`counters`, `stats` and `slab_caches` of `lines` as `parse_report` reads them (its
    other fields as far as the lines read for these hold them).

    Only a line that begins (after whitespace) with one of `_MEMCG_PREFIXES`, holds a syslog
    `#01x` escape or follows an open slab table goes the general path (`_read_line`); every
    other line, whatever it holds, can only give Mem-Info, zone, node or swap numbers, which a
    cgroup's accounting does not read. A memory cgroup's report (~100 lines) has ~5 such
    lines, so this skips the page-token tests `parse_report` runs on register dumps and the
    like (a line ~0.2 -> ~0.1 us). Tests compare the three fields with `parse_report_reference`.
    """
    rep = MemReport()
    in_slab = False
    prefixes = _MEMCG_PREFIXES
    at = enumerate(lines)
    for i, raw in at:
        if in_slab or ("#" in raw and "#01" in raw):
            pass
        elif not raw.lstrip().startswith(prefixes):
            continue
        elif raw.lstrip().startswith(_COUNTERS):  # `_read_line`'s way for such a line
            text = raw.strip()
            if (":" in text or "=" in text) and _parse_memcg(rep, text, i) is None:
                _parse_global(rep, text, i)
            continue
        in_slab, end = _read_line(rep, lines, i, in_slab)
        if end > i + 1:  # a cgroup v2 memory.stat block, read by `_read_line`
            next(islice(at, end - i - 2, None), None)
    return rep


def parse_report_reference(lines: list[str]) -> MemReport:
    """`parse_report` without its shortcut: the general path on every line (for tests)."""
    rep = MemReport()
    in_slab = False
    end = 0
    for i in range(len(lines)):
        if i >= end:
            in_slab, end = _read_line(rep, lines, i, in_slab)
    return rep


def _read_line(rep: MemReport, lines: list[str], i: int, in_slab: bool) -> tuple[bool, int]:
    """Read line `i` into `rep`: whether a slab table is open after it, and the index of the
    next line to read (past a cgroup v2 memory.stat block that this line's header opens)."""
    raw = lines[i]
    text = raw.rstrip() if "#01" not in raw else _clean(raw)
    stripped = text.strip()
    if in_slab:
        m = _SLAB_ROW.match(text)
        if m:
            used, total = int(m.group("used")), int(m.group("total"))
            rep.slab_caches.append(SlabCache(m.group("name"), used, total, i))
            return True, i + 1
        if stripped.startswith("Name") and "Used" in stripped:
            return True, i + 1
    if stripped.startswith("Unreclaimable slab info"):
        return True, i + 1
    if ":" not in stripped and "=" not in stripped and not stripped[:1].isdecimal():
        return False, i + 1  # every pattern below needs one (`^\d+ pages RAM` the digit)
    read = _parse_memcg(rep, stripped, i)
    if read is _V2_HEADER:
        return False, _v2_values(rep.stats[-1].printed, lines, i + 1)
    if read is None:
        _parse_global(rep, stripped, i)
    return False, i + 1


_V2_WINDOW = 48
"""Lines joined at first to find a memory.stat block's end (`_v2_values`)."""


def _v2_values(
    values: dict[str, str], lines: list[str], start: int, window: int = _V2_WINDOW
) -> int:
    """Read memory.stat's `key N` lines (bytes) from `start` into `values` (the numbers as
    printed, `StatsBlock.printed`); the index of the first line that is not one.

    The block (~40 lines) is matched in one piece: the lines from `start` joined, the run of
    `key N` lines at its head found by one regex (`_V2_LINE` per line, whitespace but the
    newline standing for `\\s`), its keys and numbers split off. Lines holding a newline or a
    syslog `#01x` escape take `_v2_lines`, the same reading line by line."""
    while True:
        # the next `window` lines (a block is ~40; the task table after it is long): wider
        # when the run fills them, as it may go on past them
        taken = lines[start : start + window]
        block = "\n".join(taken)
        if ("#" in block and "#01" in block) or block.count("\n") != len(taken) - 1:
            return _v2_lines(values, lines, start)
        plain = _V2_PLAIN_RUN.match(block)
        run = _V2_RUN.match(block, plain.end() if plain else 0)
        text = block[: run.end()] if run else ""
        if len(text) < len(block) or start + window >= len(lines):
            break
        window *= 4
    # each line of the run is whitespace, a key, a space, a number, whitespace: split() (the
    # whitespace of `\\s`) gives key, number, key, number...
    words = text.split()
    numbers = words[1::2]
    _convertible(text, numbers)
    values.update(zip(words[::2], numbers, strict=True))
    return start + text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def _v2_lines(values: dict[str, str], lines: list[str], start: int) -> int:
    match = _V2_LINE.match
    for i in range(start, len(lines)):
        raw = lines[i]
        m = match(raw.rstrip() if "#01" not in raw else _clean(raw))
        if m is None:
            return i
        key, value = m.groups()
        _convertible(value, (value,))
        values[key] = value
    return len(lines)


def _convertible(text: str, numbers: Iterable[str]) -> None:
    """Raise what `int()` raises for a number longer than Python converts (4,300 digits unless
    set otherwise), as the block's values were once converted as they were read; a text
    shorter than that holds none."""
    limit = sys.get_int_max_str_digits()
    if limit and len(text) > limit:
        for n in numbers:
            int(n)


_V2_HEADER = "v2"
"""`_parse_memcg` read a cgroup v2 `Memory cgroup stats for PATH:` header (the block follows)."""


def _parse_memcg(rep: MemReport, text: str, i: int) -> str | None:
    """Read a page counter or stats header: `counter`, `_V2_HEADER`, `stats`, or None."""
    m = _COUNTER.match(text) if ": usage " in text else None
    if m:
        name, usage, limit_text, failcnt = m.groups()
        limit = int(limit_text)
        counter = PageCounter(int(usage), None if limit >= UNLIMITED_KB else limit, int(failcnt), i)
        if name not in rep.counters:  # the first of each is kept
            rep.counters[name] = counter
        return "counter"
    m = _STATS.match(text) if text.startswith("Memory cgroup stats for ") else None
    if m:
        path, rest = m.groups()
        tokens = {k: int(v) for k, v in _V1_TOKEN.findall(rest)}
        v2 = not rest.strip()
        rep.stats.append(StatsBlock(path, tokens, i, v2))
        return _V2_HEADER if v2 else "stats"
    return None


def _parse_global(rep: MemReport, text: str, i: int) -> None:
    if " free:" in text and (m := _ZONE.match(text)) is not None:
        vals = {k.lower(): int(v) for k, v in _KB_TOKEN.findall(text)}
        rep.zones.append(
            Zone(
                node=int(m.group("node") or 0),
                name=m.group("zone"),
                free_kb=int(m.group("free")),
                min_kb=vals.get("min"),
                low_kb=vals.get("low"),
                high_kb=vals.get("high"),
                managed_kb=vals.get("managed"),
                values_kb=vals,
                line=i,
            )
        )
    elif text.startswith("Node ") and (m := _NODE.match(text)) is not None:
        vals = {k.lower(): int(v) for k, v in _KB_TOKEN.findall(text)}
        rep.nodes[int(m.group("node"))] = (vals, i)
    elif "*" in text and (m := _FREE_LIST.match(text)) is not None:
        blocks: dict[int, int] = {}
        for count, size in _BLOCK.findall(m.group("blocks")):
            blocks[int(size)] = blocks.get(int(size), 0) + int(count)
        node = int(m.group("node") or 0)
        rep.free_lists.append(FreeList(node, m.group("zone"), blocks, int(m.group("total")), i))
    elif "hugepages_total=" in text and (m := _HUGE.match(text)) is not None:
        rep.huge.append(
            HugePool(
                int(m.group("node")),
                int(m.group("total")),
                int(m.group("free")),
                int(m.group("size")),
                i,
            )
        )
    elif " swap" in text and (m := _SWAP.match(text)) is not None:
        value = (int(m.group("kb")), i)
        if m.group("which") == "Free":
            rep.swap_free_kb = value
        else:
            rep.swap_total_kb = value
    elif "RAM" in text and (m := _RAM.match(text)) is not None:
        rep.ram_pages = (int(m.group("n")), i)
    elif "reserved" in text and (m := _RESERVED.match(text)) is not None:
        rep.reserved_pages = (int(m.group("n")), i)
    elif "pagecache" in text and (m := _PAGECACHE.match(text)) is not None:
        rep.pagecache_pages = (int(m.group("n")), i)
    elif ":" in text and "kB" not in text and "CPU" not in text and _PAGES_HINT.search(text):
        tokens = dict(_PAGES_TOKEN.findall(text))
        following = rep.pages_last is not None and i == rep.pages_last + 1
        if tokens and (following or (not rep.pages and _MEMINFO_KEYS & tokens.keys())):
            if rep.pages_line is None:
                rep.pages_line = i
            rep.pages_last = i
            for k, v in tokens.items():
                rep.pages.setdefault(k, int(v))


def pages_kb(rep: MemReport, *keys: str) -> int | None:
    """The sum of Mem-Info page counts `keys` in kB; None when none of them was printed."""
    found = [rep.pages[k] for k in keys if k in rep.pages]
    return sum(found) * PAGE_KB if found else None
