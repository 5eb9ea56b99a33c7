"""The kernel's OOM task table (`dump_tasks()`), read by its header so every layout works.

The columns changed six times between 2.6.32 and 6.8 (cpu/oom_adj, nr_ptes, nr_pmds,
pgtables_bytes, rss_anon/rss_file/rss_shmem), and a pid wider than its field shifts the row
(`[3902942]`), so rows are split on whitespace and mapped through the header instead of by
position. Values are pages (pgtables_bytes: bytes); `Task` carries kB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kernbot.core.events import Task

PAGE_KB = 4
"""The kernel's page size in kB; 4 KiB on every architecture in the corpus (x86, ARM32)."""

_ROW = re.compile(r"^\[\s*(?P<pid>\d+)\]\s+(?P<rest>.*)$")


@dataclass(frozen=True, slots=True)
class TableLayout:
    """Column names after `[ pid ]`, as printed, ending with `name`."""

    columns: tuple[str, ...]

    @property
    def numeric(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c != "name")

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


def parse_row(layout: TableLayout, text: str) -> Task | None:
    """One table row as a `Task` (kB units), or None when the text is not a row of this layout."""
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

    def kb(col: str) -> int | None:
        v = values.get(col)
        return v * PAGE_KB if v is not None else None

    pgtables_kb: int | None
    if "pgtables_bytes" in values:
        pgtables_kb = values["pgtables_bytes"] // 1024
    elif "nr_ptes" in values:
        pgtables_kb = (values["nr_ptes"] + values.get("nr_pmds", 0)) * PAGE_KB
    else:
        pgtables_kb = None
    adj = values.get("oom_score_adj", values.get("oom_adj"))
    return Task(
        pid=int(m.group("pid")),
        uid=values.get("uid"),
        tgid=values.get("tgid"),
        total_vm_kb=kb("total_vm"),
        rss_kb=kb("rss"),
        pgtables_kb=pgtables_kb,
        swapents_kb=kb("swapents"),
        oom_score_adj=adj,
        name=name,
    )
