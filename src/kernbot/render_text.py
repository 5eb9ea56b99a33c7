"""Events as text for a terminal: `kernbot scan` output and `kernbot up`'s console alerts.

Kernel text is hostile: a process can name itself with an escape sequence that clears the
screen or retitles the terminal. Every string that came from the log goes through
`escape_terminal` before it is printed, so control characters show as `\\x1b`, not act.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from kernbot.core.events import Advice, Event, OomKillEvent, SynFloodEvent, Task
from kernbot.core.oom.why import head_lines

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]")

_CONSTRAINT = {
    "CONSTRAINT_MEMCG": "memory cgroup limit",
    "CONSTRAINT_NONE": "system-wide",
    "CONSTRAINT_CPUSET": "cpuset (allowed NUMA nodes full)",
    "CONSTRAINT_MEMORY_POLICY": "memory policy (mbind/NUMA)",
}
_MARK = {"critical": "!!", "warning": "! ", "info": "- "}
_TOP = 5


def _esc_char(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_terminal(text: object) -> str:
    """`text` with control, bidi and line-breaking characters shown as `\\xNN` / `\\uNNNN`."""
    return _UNSAFE.sub(_esc_char, str(text))


def _size(kb: int | None) -> str:
    if kb is None:
        return "?"
    if kb >= 1024 * 1024:
        return f"{kb / (1024 * 1024):.1f} GiB"
    if kb >= 1024:
        return f"{kb / 1024:.1f} MiB"
    return f"{kb} kB"


def _when(ev: Event) -> str:
    if ev.time:
        return escape_terminal(ev.time)
    if ev.mono_usec is not None:
        return f"[{ev.mono_usec // 1_000_000}.{ev.mono_usec % 1_000_000:06d}]"
    return ""


def _heading(kind: str, ev: Event, note: str = "") -> str:
    parts = [kind]
    if ev.host:
        parts.append(f"on {escape_terminal(ev.host)}")
    when = _when(ev)
    if when:
        parts.append(f"at {when}")
    if note:
        parts.append(f"({note})")
    return " ".join(parts)


def _field(name: str, value: str) -> str:
    return f"  {name:<9}{value}"


def render_event(ev: Event) -> str:
    """One readable block (several lines, no trailing newline) for one event."""
    lines = _oom_lines(ev) if isinstance(ev, OomKillEvent) else _syn_lines(ev)
    lines.extend(_advice_lines(ev.advice))
    return "\n".join(lines)


def _oom_lines(ev: OomKillEvent) -> list[str]:
    if ev.panic:
        note = "the kernel panicked: panic_on_oom"
    elif ev.global_oom or (ev.constraint == "CONSTRAINT_NONE" and ev.memcg is None):
        note = "system-wide"
    elif _scope_unknown(ev):
        note = "partial report"
    else:
        note = _CONSTRAINT.get(ev.constraint or "", escape_terminal(ev.constraint or "memory"))
    if not ev.complete:
        note += ", report incomplete"
    lines = [_heading("OOM kill", ev, note)]
    lines.extend("  " + escape_terminal(text) for text in head_lines(ev))
    v = ev.victim
    if v.pid is not None or v.comm is not None:
        uid = f", uid {v.uid}" if v.uid is not None else ""
        mem = ", ".join(
            f"{label} {_size(kb)}"
            for label, kb in (
                ("anon-rss", v.anon_rss_kb),
                ("file-rss", v.file_rss_kb),
                ("shmem-rss", v.shmem_rss_kb),
                ("total-vm", v.total_vm_kb),
            )
            if kb is not None
        )
        lines.append(_field("killed", f"{escape_terminal(v.comm or '?')} (pid {v.pid}{uid})"))
        if mem:
            lines.append(_field("", mem))
    lines.append(_field("scope", _why(ev)))
    score = []
    if v.oom_score is not None:
        score.append(f"oom_score {v.oom_score}")
    if v.printed_score is not None:
        score.append(f"printed score {v.printed_score}")
    if v.oom_score_adj is not None:
        score.append(f"oom_score_adj {v.oom_score_adj}")
    if score:
        lines.append(_field("score", ", ".join(score)))
    t = ev.trigger
    if t.comm is not None and (t.comm != v.comm or (t.pid and v.pid and t.pid != v.pid)):
        pid = f" (pid {t.pid})" if t.pid is not None else ""
        gfp = f": gfp_mask={escape_terminal(t.gfp_mask)}" if t.gfp_mask else ""
        order = f", order={t.order}" if t.order is not None else ""
        lines.append(
            _field("trigger", f"{escape_terminal(t.comm)}{pid} asked for memory{gfp}{order}")
        )
    k = ev.kubernetes
    if k is not None:
        if k.pod:
            who = f"{escape_terminal(k.namespace or '?')}/{escape_terminal(k.pod)}"
            if k.container:
                who += f" container {escape_terminal(k.container)}"
        else:
            who = f"uid {escape_terminal(k.pod_uid or '?')}"
        extra = [f"qos {k.qos}"] if k.qos else []
        if k.container_id:
            extra.append(f"container id {escape_terminal(k.container_id[:12])}")
        lines.append(_field("pod", who + (f" ({', '.join(extra)})" if extra else "")))
    if ev.group_kill:
        lines.append(_field("group", f"memory.oom.group: {len(ev.group_victims)} tasks killed"))
    top = _top(ev.tasks)
    if top:
        lines.append(_field("top", _task(top[0])))
        lines.extend(_field("", _task(t)) for t in top[1:])
    if ev.reaper is not None and ev.reaper.reaped is False:
        lines.append(_field("reaper", "the oom_reaper could not reap the victim's memory"))
    return lines


def _scope_unknown(ev: OomKillEvent) -> bool:
    return not ev.global_oom and ev.constraint is None and ev.memcg is None and ev.meminfo is None


def _why(ev: OomKillEvent) -> str:
    m = ev.memcg
    if m is not None and not ev.global_oom and (m.oom_path or m.usage_kb is not None):
        path = escape_terminal(m.oom_path or m.task_path or "?")
        text = f"memory cgroup {path} hit its limit"
        if m.usage_kb is not None:
            limit = _size(m.limit_kb) if m.limit_kb is not None else "unlimited"
            text += f": usage {_size(m.usage_kb)} of {limit}"
        if m.failcnt is not None:
            text += f" (failcnt {m.failcnt})"
        if m.task_path and m.task_path != m.oom_path:
            text += f"; victim's cgroup {escape_terminal(m.task_path)}"
        return text
    if ev.panic:
        return "out of memory with vm.panic_on_oom set: the host crashed instead of killing"
    if _scope_unknown(ev):
        return "not in this part of the log: the report around the kill line is missing"
    text = "the whole host ran out of memory"
    mi = ev.meminfo
    if mi is not None and mi.total_ram_kb is not None:
        text += f" (RAM {_size(mi.total_ram_kb)}"
        if mi.total_swap_kb is not None:
            text += f", swap {_size(mi.total_swap_kb)}, free swap {_size(mi.free_swap_kb)}"
        text += ")"
    if ev.constraint and ev.constraint not in ("CONSTRAINT_NONE", "CONSTRAINT_MEMCG"):
        text = f"{_CONSTRAINT.get(ev.constraint, escape_terminal(ev.constraint))} exhausted"
    return text


def _top(tasks: Sequence[Task]) -> list[Task]:
    return sorted(tasks, key=lambda t: t.rss_kb or 0, reverse=True)[:_TOP]


def _task(t: Task) -> str:
    adj = f", adj {t.oom_score_adj}" if t.oom_score_adj is not None else ""
    score = f", oom_score {t.oom_score}" if t.oom_score is not None else ""
    return f"{escape_terminal(t.name)} (pid {t.pid}) rss {_size(t.rss_kb)}{adj}{score}"


def _syn_lines(ev: SynFloodEvent) -> list[str]:
    lines = [_heading("SYN flood", ev)]
    if ev.addr:
        addr = escape_terminal(ev.addr)
        where = f"[{addr}]:{ev.port}" if ev.family == "ipv6" else f"{addr}:{ev.port}"
    else:
        where = f"port {ev.port}"
    proto = f", proto {escape_terminal(ev.proto)}" if ev.proto else ""
    lines.append(_field("listener", f"{where} ({ev.family}{proto})"))
    action = (
        "sending SYN cookies (the SYN queue is full)"
        if ev.action == "cookies"
        else "dropping connection requests (SYN queue full, tcp_syncookies=0)"
    )
    lines.append(_field("action", action))
    return lines


def _advice_lines(advice: Iterable[Advice]) -> list[str]:
    out: list[str] = []
    for a in advice:
        if not out:
            out.append("  advice")
        out.append(f"   {_MARK.get(a.severity, '- ')} {escape_terminal(a.title)}")
        out.append(f"       {escape_terminal(a.why)}")
        out.extend(f"       $ {escape_terminal(c)}" for c in a.commands)
    return out


def render_summary(events: Sequence[Event]) -> str:
    """The final one-liner: how many of each kind, and what they hit."""
    ooms = [e for e in events if isinstance(e, OomKillEvent)]
    syns = [e for e in events if isinstance(e, SynFloodEvent)]
    if not ooms and not syns:
        return "No OOM kills or SYN floods found."
    parts = []
    if ooms:
        victims = sorted({escape_terminal(e.victim.comm) for e in ooms if e.victim.comm})
        shown = ", ".join(victims[:5]) + (", …" if len(victims) > 5 else "")
        parts.append(
            f"{len(ooms)} OOM kill{'s' if len(ooms) != 1 else ''}"
            + (f" ({shown})" if shown else "")
        )
    if syns:
        ports = sorted({e.port for e in syns if e.port is not None})
        shown = ", ".join(str(p) for p in ports[:5]) + (", …" if len(ports) > 5 else "")
        parts.append(
            f"{len(syns)} SYN flood message{'s' if len(syns) != 1 else ''}"
            + (f" (port{'s' if len(ports) != 1 else ''} {shown})" if shown else "")
        )
    return "Found " + " and ".join(parts) + "."


def render_events(events: Sequence[Event]) -> str:
    """Every event's block, a blank line between them, then the summary line."""
    blocks = [render_event(e) for e in events]
    blocks.append(render_summary(events))
    return "\n\n".join(blocks) + "\n"
