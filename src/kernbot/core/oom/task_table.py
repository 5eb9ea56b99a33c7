"""The kernel's OOM task table (`dump_tasks()`), read by its header so every layout works.

The columns changed six times between 2.6.32 and 6.8 (cpu/oom_adj, nr_ptes, nr_pmds,
pgtables_bytes, rss_anon/rss_file/rss_shmem), and a pid wider than its field shifts the row
(`[3902942]`), so rows are split on whitespace and mapped through the header instead of by
position. Values are pages (pgtables_bytes: bytes); `TaskRow` (and `Task`) carry kB.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

PAGE_KB = 4
"""The kernel's page size in kB; 4 KiB on every architecture in the corpus (x86, ARM32)."""

_ROW = re.compile(r"^\[\s*(?P<pid>\d+)\]\s+(?P<rest>.*)$")
SEEN_ROWS = 2048
"""Rows a layout remembers (a TaskRow is immutable, so one is shared by every report); with
`table_layout`'s 8 layouts at most a few MB however long the agent runs."""
_PICKED = ("uid", "tgid", "total_vm", "rss", "swapents")
_PGTABLES = ("pgtables_bytes", "nr_ptes", "nr_pmds")
_tuple_new = tuple.__new__


class TaskRow(NamedTuple):
    """One table row as read (kB units), the fields of `kernbot.core.events.Task` but its score.

    A tuple, not the pydantic model: a report's rows are read long before its event is built
    (and a task table of a big host has thousands), so the model is made once, when the event
    is (`kernbot.core.oom.event`)."""

    pid: int
    uid: int | None
    tgid: int | None
    total_vm_kb: int | None
    rss_kb: int | None
    pgtables_kb: int | None
    swapents_kb: int | None
    oom_score_adj: int | None
    name: str


@dataclass(frozen=True, slots=True)
class TableLayout:
    """Column names after `[ pid ]`, as printed, ending with `name`."""

    columns: tuple[str, ...]
    numeric: tuple[str, ...] = field(init=False, compare=False, repr=False)
    """The columns but `name`: each row holds an integer for each, in this order."""
    plain_row: re.Pattern[str] = field(init=False, compare=False, repr=False)
    """A row as the kernel prints it (blanks between ASCII integers): read with one match and
    no dict (`_plain_row`); any other row takes `parse_row`'s general path."""
    pick: Callable[[list[int | None]], tuple[int | None, ...]] = field(
        init=False, compare=False, repr=False
    )
    """uid, tgid, total_vm, rss, swapents, the adj, pgtables_bytes, nr_ptes and nr_pmds out of
    a row's integers (the last such column, as the general path's dict keeps) with a None
    appended (what a column the layout lacks reads)."""
    seen: dict[str, TaskRow] = field(init=False, compare=False, repr=False)
    """Rows read lately, by text: the tasks of a cgroup in an OOM loop that are not the victim
    (the pause container, shells, agents) print the very same row in report after report."""

    def __post_init__(self) -> None:
        numeric = tuple(c for c in self.columns if c != "name")
        at = {col: i for i, col in enumerate(numeric)}
        adj = at.get("oom_score_adj", at.get("oom_adj", -1))
        picks = (*(at.get(c, -1) for c in _PICKED), adj, *(at.get(c, -1) for c in _PGTABLES))
        values = r" +(-?[0-9]+)" * len(numeric)
        pattern = r"\[ *([0-9]+)\]" + values + r"(?: +(?=\S)([^\r\n]*)|[^\S\r\n]*)$"
        object.__setattr__(self, "numeric", numeric)
        object.__setattr__(self, "plain_row", re.compile(pattern))
        object.__setattr__(self, "pick", itemgetter(*picks))
        object.__setattr__(self, "seen", {})

    @property
    def style(self) -> str:
        """Which kernel generation printed this table, from its distinguishing column."""
        cols = set(self.columns)
        if "rss_anon" in cols:
            return "6.8+"
        if "pgtables_bytes" in cols:
            return "4.15+"
        if "nr_pmds" in cols:
            return "4.0-4.14"
        if "nr_ptes" in cols:
            return "3.8-3.19"
        if "oom_score_adj" in cols:
            return "2.6.36-3.7"
        return "pre-2.6.36"


@lru_cache(maxsize=8)
def table_layout(columns: tuple[str, ...]) -> TableLayout:
    """The layout of a table header's columns, made once per header (a node in an OOM loop
    prints the same header for every kill)."""
    return TableLayout(columns)


def parse_row(layout: TableLayout, text: str) -> TaskRow | None:
    """One table row (kB units), or None when the text is not a row of this layout."""
    seen = layout.seen
    row = seen.get(text)
    if row is None:
        plain = layout.plain_row.match(text)
        try:
            row = _plain_row(layout, plain.groups()) if plain else general_row(layout, text)
        except ValueError:  # a number past `int`'s 4,300 digits: not a row a kernel printed
            return None
        if row is not None:
            if len(seen) >= SEEN_ROWS:
                seen.clear()
            seen[text] = row
    return row


def general_row(layout: TableLayout, text: str) -> TaskRow | None:
    """`parse_row` for any row: split on whitespace and mapped through the header."""
    m = _ROW.match(text.strip("\r\n"))
    if not m:
        return None
    numeric = layout.numeric
    parts = m.group("rest").split(None, len(numeric))
    if len(parts) < len(numeric):
        return None
    values: dict[str, int] = {}
    for col, raw in zip(numeric, parts, strict=False):
        try:
            values[col] = int(raw)
        except ValueError:
            return None
    name = parts[len(numeric)] if len(parts) > len(numeric) else ""
    get = values.get
    pgtables_kb: int | None
    if "pgtables_bytes" in values:
        pgtables_kb = values["pgtables_bytes"] // 1024
    elif "nr_ptes" in values:
        pgtables_kb = (values["nr_ptes"] + get("nr_pmds", 0)) * PAGE_KB
    else:
        pgtables_kb = None
    total_vm, rss, swapents = get("total_vm"), get("rss"), get("swapents")
    return TaskRow(
        int(m.group("pid")),
        get("uid"),
        get("tgid"),
        total_vm * PAGE_KB if total_vm is not None else None,
        rss * PAGE_KB if rss is not None else None,
        pgtables_kb,
        swapents * PAGE_KB if swapents is not None else None,
        get("oom_score_adj", get("oom_adj")),
        name,
    )


def _plain_row(layout: TableLayout, found: tuple[str | Any, ...]) -> TaskRow:
    """`parse_row`'s result for a row `TableLayout.plain_row` matched (its groups: the pid, the
    integers, the name or None)."""
    values: list[int | None] = list(map(int, found[1:-1]))
    values.append(None)  # what a column the layout lacks (-1) reads
    uid, tgid, total_vm, rss, swapents, adj, pgt_bytes, ptes, pmds = layout.pick(values)
    pgtables_kb: int | None = None
    if pgt_bytes is not None:
        pgtables_kb = pgt_bytes // 1024
    elif ptes is not None:
        pgtables_kb = (ptes + (pmds or 0)) * PAGE_KB
    return _tuple_new(
        TaskRow,
        (
            int(found[0]),
            uid,
            tgid,
            total_vm * PAGE_KB if total_vm is not None else None,
            rss * PAGE_KB if rss is not None else None,
            pgtables_kb,
            swapents * PAGE_KB if swapents is not None else None,
            adj,
            found[-1] or "",
        ),
    )
