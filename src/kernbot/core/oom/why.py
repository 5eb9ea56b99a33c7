"""The two things every OOM alert shows first: one "Why: …" line and the accounting bar.

Both come from the event's `diagnosis` and `accounting`; an event from an older agent without
them is diagnosed from its own lines first (`with_diagnosis`). The Why line comes as parts that
mark host text (a comm, a program or slab cache name) so renderers show it literally; nothing is
escaped here: each renderer escapes for its medium.

The bar gives every kB of the total (the cgroup's limit, or RAM) one glyph class, in a fixed
order, so a reader learns it once: `█` anon, `▓` page cache, `▒` shmem, `░` slab, `▪` other
kernel memory and what no counter explains, `·` free. Widths use largest remainders, so the bar
always has exactly `width` cells; the legend gives every part of 0.5% or more in whole percent.
"""

from __future__ import annotations

from collections.abc import Mapping

from kernbot.core.events import Finding, OomKillEvent
from kernbot.core.oom.diagnosis import attach_diagnosis, evidence_nodes, nodes_phrase
from kernbot.core.units import size

BAR_PARTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("anon", "█", ("anon",)),
    ("page cache", "▓", ("page_cache",)),
    ("shmem", "▒", ("shmem",)),
    ("slab", "░", ("slab_unreclaimable", "slab_reclaimable")),
    (
        "other",
        "▪",
        ("kernel_stack", "page_tables", "hugepages", "kernel_other", "unevictable", "unaccounted"),
    ),
    ("free", "·", ("free",)),
)
WIDTH = 20
SECONDARY = frozenset({"no_swap", "swap_exhausted", "adj_forced"})
"""Causes that explain the victim or the timing, not what filled the memory."""


def _mib(kb: object) -> str:
    return size(kb) if isinstance(kb, int) else "?"


def _pct(share: object) -> str:
    if not isinstance(share, float | int):
        return ""
    return " (all of it)" if share > 1 else f" ({share * 100:.0f}%)"


Part = tuple[str, bool]
"""Text and whether it came from the host (a comm, a program or cache name): renderers show
those literally (a Slack code span, copyable), the rest as our words."""


def _host(value: object) -> Part:
    return (str(value), True)


NEEDS: dict[str, tuple[str, ...]] = {
    "one_process": ("comm", "pid", "kb"),
    "many_processes": ("count", "program", "kb"),
    "shmem": ("kb",),
    "slab": ("kb",),
    "kernel_other": ("kb",),
    "page_cache": ("kb",),
    "hugepages": ("kb", "free_kb"),
    "fragmentation": ("order",),
    "adj_forced": ("victim_adj",),
}
"""Evidence a cause's short form needs; without it (another producer's finding), the finding's
own summary is shown instead."""


def headline_parts(f: Finding) -> list[Part]:
    """A finding in a few words with its main number, for the Why line."""
    e = f.evidence
    if any(e.get(k) is None for k in NEEDS.get(f.cause, ())):
        return [(f.summary.rstrip("."), True)]
    match f.cause:
        case "memcg_limit":
            if "memsw_limit_kb" in e:
                return [
                    (f"the cgroup hit its memory+swap limit ({_mib(e['memsw_limit_kb'])})", False)
                ]
            if e.get("limit_kb") is None:
                return [("the cgroup hit its memory limit", False)]
            return [(f"the cgroup hit its {_mib(e['limit_kb'])} limit", False)]
        case "one_process":
            held = f" (pid {e.get('pid')}) alone held {_mib(e.get('kb'))}{_pct(e.get('share'))}"
            return [_host(e.get("comm")), (held, False)]
        case "many_processes":
            return [
                (f"{e.get('count')} ", False),
                _host(e.get("program")),
                (f" processes added up to {_mib(e.get('kb'))}{_pct(e.get('share'))}", False),
            ]
        case "shmem":
            held = f"{_mib(e.get('kb'))}{_pct(e.get('share'))}"
            return [(f"shmem/tmpfs held {held}, which killing does not free", False)]
        case "slab":
            out = [(f"kernel slab held {_mib(e.get('kb'))}{_pct(e.get('share'))}", False)]
            top = e.get("top_caches")
            head = top[0] if isinstance(top, list) and top else None
            if isinstance(head, dict) and head.get("name"):
                out += [(", mostly ", False), _host(head.get("name"))]
            return out
        case "kernel_other":
            return [(f"kernel memory held {_mib(e.get('kb'))}{_pct(e.get('share'))}", False)]
        case "page_cache":
            return [
                (f"{_mib(e.get('kb'))} of dirty page cache was not written back in time", False)
            ]
        case "hugepages":
            free = _mib(e.get("free_kb"))
            return [(f"{_mib(e.get('kb'))} is reserved as hugepages ({free} unused)", False)]
        case "fragmentation":
            order = e.get("order")
            return [(f"an order-{order} allocation found free memory too fragmented", False)]
        case "cpuset_or_mempolicy":
            return [(_confined(e), False)]
        case "swap_exhausted":
            return [("swap was full", False)]
        case "no_swap":
            return [("there was no swap", False)]
        case "adj_forced":
            adj = e.get("victim_adj")
            return [(f"oom_score_adj {adj}, not size, chose the victim", False)]
    return [(f.summary.rstrip("."), False)]


def _confined(e: Mapping[str, object]) -> str:
    """`the memory policy allowed only node 1, which ran out (3 MiB free) while node 0 had …`."""
    by = "the memory policy" if e.get("constraint") == "CONSTRAINT_MEMORY_POLICY" else "the cpuset"
    allowed, free = evidence_nodes(e.get("allowed_nodes")), e.get("allowed_free_kb")
    if allowed is None:
        return f"{by} confined the allocation to some NUMA nodes, which ran out"
    where = nodes_phrase(allowed)
    if not isinstance(free, int):
        return f"{by} allowed only {where}, which ran out"
    out = f"{by} allowed only {where}, which ran out ({_mib(free)} free)"
    elsewhere = e.get("free_elsewhere_kb")
    if isinstance(elsewhere, int):
        others = evidence_nodes(e.get("elsewhere_nodes"))
        name = nodes_phrase(others) if others else "other nodes"
        out += f" while {name} had {_mib(elsewhere)} free"
    return out


def with_diagnosis(ev: OomKillEvent) -> OomKillEvent:
    """`ev`, or a copy diagnosed from its own lines when it came without (an older agent)."""
    if ev.diagnosis or ev.diagnosis_gaps or not ev.lines:
        return ev
    copy = ev.model_copy(deep=True)
    attach_diagnosis(copy)
    return copy


def why_parts(ev: OomKillEvent) -> list[Part]:
    """`Why: <cause>; <what filled it>.` from the diagnosis, or what could not be judged."""
    findings = ev.diagnosis
    gaps = ev.diagnosis_gaps
    if not findings and not gaps:
        return []
    manual = [g for g in gaps if g.startswith("a manual OOM")]
    if manual:
        return [(f"Why: {manual[0]}.", False)]
    main = [f for f in findings if f.cause not in SECONDARY] or findings
    if not main:
        return [("Why: not judged: " + gaps[0] + ".", False)]
    out: list[Part] = [("Why: ", False)]
    for n, f in enumerate(main[:2]):
        out += ([("; ", False)] if n else []) + headline_parts(f)
    if [f.cause for f in main] == ["memcg_limit"] and any("memory.stat" in g for g in gaps):
        out.append(("; what filled it is not in this part of the log", False))
    adj = [f for f in findings if f.cause == "adj_forced"]
    if adj:  # the process that filled the memory is not the one that died: say so
        out += [("; ", False), *headline_parts(adj[0])]
    return [*out, (".", False)]


def why_line(ev: OomKillEvent) -> str | None:
    """The Why line as plain text."""
    return "".join(text for text, _ in why_parts(ev)) or None


def bar_segments(ev: OomKillEvent) -> list[tuple[str, str, int, float]]:
    """(label, glyph, kB, share of the total) for each bar part, in the fixed order."""
    acc = ev.accounting
    if acc is None:
        return []
    parts, total = acc.parts_kb, acc.total_kb
    if not parts or total is None or total <= 0:
        return []
    out = []
    for label, glyph, keys in BAR_PARTS:
        kb = sum(int(parts.get(k) or 0) for k in keys)
        out.append((label, glyph, kb, kb / total))
    if sum(kb for _, _, kb, _ in out) < total * 0.9:  # what filled it was not printed
        return []
    return out


def _cells(shares: list[float], width: int) -> list[int]:
    raw = [max(s, 0.0) * width for s in shares]
    cells = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - cells[i], reverse=True)
    for i in order[: max(width - sum(cells), 0)]:
        cells[i] += 1
    return cells


def accounting_bar(ev: OomKillEvent, width: int = WIDTH) -> str | None:
    """`[██████▒▒▒·] anon 60% · shmem 30% · free 10% of 64 MiB limit`, or None without numbers."""
    segs = bar_segments(ev)
    if not segs:
        return None
    acc = ev.accounting
    total = acc.total_kb if acc is not None else None
    if acc is None or total is None:
        return None
    cells = _cells([s for *_, s in segs], width)
    bar = "".join(glyph * n for (_, glyph, _, _), n in zip(segs, cells, strict=True))
    legend = ", ".join(
        f"{glyph} {label} {share * 100:.0f}%" for (label, glyph, _, share) in segs if share >= 0.005
    )
    if acc.scope == "memcg":
        of = f"{size(total)} limit"
    else:
        confined = next((f for f in ev.diagnosis if f.cause == "cpuset_or_mempolicy"), None)
        nodes = evidence_nodes(confined.evidence.get("allowed_nodes")) if confined else None
        of = f"{nodes_phrase(nodes)}'s {size(total)} RAM" if nodes else f"{size(total)} RAM"
    return f"[{bar[:width]}] {legend} (of {of})"
