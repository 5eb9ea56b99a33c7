"""The kernel's OOM task table (`dump_tasks()`), read by its header so every layout works.

The columns changed six times between 2.6.32 and 6.8 (cpu/oom_adj, nr_ptes, nr_pmds,
pgtables_bytes, rss_anon/rss_file/rss_shmem), and a pid wider than its field shifts the row
(`[3902942]`), so rows are split on whitespace and mapped through the header instead of by
position. Values are pages (pgtables_bytes: bytes); `TaskRow` (and `Task`) carry kB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

PAGE_KB = 4
"""The kernel's page size in kB; 4 KiB on every architecture in the corpus (x86, ARM32)."""

_ROW = re.compile(r"^\[\s*(?P<pid>\d+)\]\s+(?P<rest>.*)$")


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "numeric", tuple(c for c in self.columns if c != "name"))

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


def parse_row(layout: TableLayout, text: str) -> TaskRow | None:
    """One table row (kB units), or None when the text is not a row of this layout."""
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
