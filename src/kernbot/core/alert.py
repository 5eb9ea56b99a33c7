"""One alert document per event: the facts, words and units every renderer shows.

Slack (Block Kit, kernbot.bot.render), `kernbot up`'s console and `kernbot scan` render the same
`AlertDocument`, so they cannot disagree on a fact, a label or a unit. The document is built once
from an event (plus what the bot alone knows: repeats, kills it stored, silences).

Text is a list of spans: `text` is ours (fixed words), `value` came from a host or the kernel and
is shown literally (a code span in Slack, as-is but escaped on a terminal), `strong` is ours and
emphasised, `prose` is a sentence that may quote host values (notices): inert, not a code span.
Renderers escape values for their medium; nothing here is escaped.

Rules every builder here keeps: a value the report does not carry is left out, never shown as a
placeholder (`None`, `?`); what is known about a missing value is said instead ("name not
resolved", "no process was killed"); the scale of a score is named; the headline and the facts
come from the same `scope()`, so they cannot contradict each other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from kernbot.core.context import WHO_IS_NEXT, ProcInfo, Psi
from kernbot.core.events import Advice, Event, OomKillEvent, SynFloodEvent, Task
from kernbot.core.oom.why import accounting_bar, why_parts, with_diagnosis
from kernbot.core.units import size

SpanKind = Literal["text", "value", "strong", "prose", "link"]
MAX_TASKS = 8


class Span(BaseModel):
    text: str
    kind: SpanKind = "text"
    url: str | None = None
    """`link` only: where our words point (a Slack permalink; see `link`)."""


Line = list[Span]


def t(text: str) -> Span:
    """Our own words."""
    return Span(text=text)


def v(value: object) -> Span:
    """A host value: shown literally, copyable."""
    return Span(text=str(value), kind="value")


_SAFE_URL = re.compile(r"https://[^\s<>|\x00-\x1f\x7f]+")


def link(text: str, url: str | None) -> Span:
    """Our words pointing at `url`; plain words when the URL is not a plain https URL (only
    links the bot got from Slack itself are made, but nothing odd reaches the markup)."""
    if url is None or not _SAFE_URL.fullmatch(url):
        return t(text)
    return Span(text=text, kind="link", url=url)


def b(text: str) -> Span:
    """Our own words, emphasised."""
    return Span(text=text, kind="strong")


def plain_text(line: Sequence[Span]) -> str:
    """The line's characters with no markup (for tests and fallbacks)."""
    return "".join(s.text for s in line)


class Fact(BaseModel):
    label: str
    value: Line


class Table(BaseModel):
    """Rows of a fixed-width table; cells may hold host values (escaped by the renderer)."""

    header: list[str]
    rows: list[list[str]]


class Section(BaseModel):
    title: str
    lines: list[Line] = Field(default_factory=list)
    table: Table | None = None


class Action(BaseModel):
    """A button: what it does (label), its id, and the data it carries."""

    label: str
    action_id: str
    value: str
    style: Literal["primary", "danger"] | None = None


class AlertDocument(BaseModel):
    kind: str
    title: str
    """One line, may contain host values (renderers escape it as plain text)."""
    why: list[Line] = Field(default_factory=list)
    """What an OOM alert opens with (issue 12): the `Why: …` line, the accounting bar (a
    value: monospace, so its cells line up), and the across-kills pattern when there is one."""
    headline: Line
    facts: list[Fact] = Field(default_factory=list)
    sections: list[Section] = Field(default_factory=list)
    advice: list[Advice] = Field(default_factory=list)
    notes: list[Line] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    fallback: str = ""
    """The title without decoration, for notifications (no markup)."""


class BotFacts(BaseModel):
    """What only the bot knows about an alert (absent for `kernbot scan`)."""

    repeat_count: int = 1
    kills_24h_host: int | None = None
    kills_24h_pod: int | None = None
    silenced_until: str | None = None
    silence_target: str | None = None
    """`pod:NS/NAME` or `host:NAME`: adds the Silence buttons."""
    related_channel: str | None = None
    """Where the other alert of an OOM-risk warning and its kill was posted (each names the
    other), and when (`related_at`, UTC)."""
    related_at: str | None = None
    related_link: str | None = None
    """The other alert's Slack permalink (chat.getPermalink), when Slack gave one."""


SILENCE_ACTIONS = {"kernbot_silence_1h": 3600.0, "kernbot_silence_24h": 86400.0}


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


Scope = Literal["memcg", "system", "cpuset", "mempolicy", "panic", "unknown"]


def scope(ev: OomKillEvent) -> Scope:
    """What ran out, decided once for the headline, the facts and the title."""
    if ev.global_oom or ev.constraint == "CONSTRAINT_NONE":
        return "system"
    if ev.constraint == "CONSTRAINT_MEMCG" or (ev.memcg is not None and ev.memcg.oom_path):
        return "memcg"
    if ev.constraint == "CONSTRAINT_CPUSET":
        return "cpuset"
    if ev.constraint == "CONSTRAINT_MEMORY_POLICY":
        return "mempolicy"
    if ev.meminfo is not None:
        return "system"
    return "panic" if ev.panic else "unknown"


def _process(comm: str | None, pid: int | None) -> Line:
    """`comm (pid N)` with what is known: `comm`, `pid N`, or nothing."""
    if comm is not None and pid is not None:
        return [v(comm), t(f" (pid {pid})")]
    if comm is not None:
        return [v(comm)]
    return [t(f"pid {pid}")] if pid is not None else []


def _victim_spans(ev: OomKillEvent) -> Line:
    return _process(ev.victim.comm, ev.victim.pid)


def _victim_title(ev: OomKillEvent) -> str:
    vic = ev.victim
    if vic.comm is not None and vic.pid is not None:
        return f"{vic.comm} (pid {vic.pid})"
    return vic.comm or (f"pid {vic.pid}" if vic.pid is not None else "")


def _killed(ev: OomKillEvent) -> bool:
    return ev.victim.pid is not None or ev.victim.comm is not None


def _cause(ev: OomKillEvent, where: Scope) -> Line:
    m = ev.memcg
    if where == "memcg":
        if m is not None and m.oom_path:
            out = [t("memory cgroup "), v(m.oom_path), t(" hit its limit")]
            if m.usage_kb is not None:
                limit = f"a {size(m.limit_kb)} limit" if m.limit_kb is not None else "no limit"
                out.append(t(f" ({size(m.usage_kb)} used of {limit})"))
            return out
        return [t("a memory cgroup hit its limit (which one is not in this part of the log)")]
    if where == "system":
        return [t("the whole host ran out of memory (system-wide)")]
    if where == "cpuset":
        return [t("the memory nodes its cpuset allows ran out")]
    if where == "mempolicy":
        return [t("the memory nodes its memory policy (mbind/NUMA) allows ran out")]
    return []


def _on(host: str | None) -> Line:
    return [t(" on "), v(host)] if host else []


def _oom_headline(ev: OomKillEvent, where: Scope, host: str | None) -> Line:
    if ev.missing_from_log:
        n = ev.context.missing_kills
        count = plural(n, "OOM kill") if n is not None else "OOM kills"
        return [
            t("/proc/vmstat"),
            *_on(host),
            t(
                f" counted {count} that the kernel log does not show (ring buffer overrun or "
                "printk rate limiting): victim and cause are not known."
            ),
        ]
    cause = _cause(ev, where)
    if ev.panic and not _killed(ev):
        out = [b("No process was killed: the kernel panicked"), t(" (vm.panic_on_oom)")]
        return out + ([t(" because "), *cause, t(".")] if cause else [t(".")])
    if not _killed(ev):
        out = [t("The kernel ran out of memory"), *_on(host)]
        out += [t(": "), *cause] if cause else []
        return [*out, t("; the kill line is not in this part of the log.")]
    out = [t("The kernel killed "), *_victim_spans(ev), *_on(host)]
    if cause:
        out += [t(" because "), *cause, t(".")]
    else:
        out.append(t("; why (which limit, or the whole host) is not in this part of the log."))
    if ev.panic:
        out.append(t(" Then it panicked (vm.panic_on_oom)."))
    if ev.group_kill:
        n = len(_group_pids(ev))
        who = plural(n, "process", "processes")
        out.append(t(f" memory.oom.group: the whole cgroup was killed ({who})."))
    return out


def _group_pids(ev: OomKillEvent) -> set[int | None]:
    """Everyone memory.oom.group killed, the main victim included once."""
    return {ev.victim.pid, *(g.pid for g in ev.group_victims)}


def _score_scale(where: Scope) -> str:
    """Which scale a score from the report is on; empty when the report does not say."""
    if where == "memcg":
        return "on the memory cgroup's scale (relative to its limit; /proc/PID/oom_score is lower)"
    if where in ("system", "panic"):
        return "on the /proc/PID/oom_score scale"
    if where in ("cpuset", "mempolicy"):
        return "on the scale of the allowed memory nodes"
    return ""


def _victim_facts(ev: OomKillEvent, where: Scope) -> list[Fact]:
    vic = ev.victim
    out: list[Fact] = []
    who = _victim_spans(ev)
    if who:
        if vic.uid is not None:
            who.append(t(f", uid {vic.uid}"))
        out.append(Fact(label="Killed", value=who))
    mem = [
        f"{label} {size(kb)}"
        for label, kb in (
            ("anon-rss", vic.anon_rss_kb),
            ("file-rss", vic.file_rss_kb),
            ("shmem-rss", vic.shmem_rss_kb),
            ("total-vm", vic.total_vm_kb),
            ("pgtables", vic.pgtables_kb),
        )
        if kb is not None
    ]
    if mem:
        out.append(Fact(label="Victim memory", value=[t(", ".join(mem))]))
    score: Line = []
    scale = _score_scale(where)
    if vic.oom_score is not None:
        score.append(t(f"{vic.oom_score} {scale}".rstrip()))
    if vic.printed_score is not None:
        sep = "; " if score else ""
        score.append(t(f"{sep}the kernel printed score {vic.printed_score}"))
        if vic.oom_score is None and scale:
            score.append(t(f" ({scale})"))
    if vic.oom_score_adj:
        score.append(t(f", oom_score_adj {vic.oom_score_adj}"))
    if score:
        out.append(Fact(label="Victim oom_score", value=score))
    return out


def _trigger_fact(ev: OomKillEvent) -> Fact | None:
    tr, vic = ev.trigger, ev.victim
    if tr.comm is None or (tr.comm == vic.comm and tr.pid in (None, vic.pid)):
        return None
    line = [v(tr.comm)]
    if tr.pid is not None:
        line.append(t(f" (pid {tr.pid})"))
    extra = []
    if tr.order is not None:
        extra.append(t(f"order {tr.order}"))
    if tr.gfp_mask:
        extra += [t("gfp_mask "), v(tr.gfp_mask)]
    if extra:
        line += [t(": "), *extra[:1], *([t(", ")] if len(extra) > 1 else []), *extra[1:]]
    return Fact(label="Asked for memory", value=line)


def _cgroup_facts(ev: OomKillEvent) -> list[Fact]:
    m = ev.memcg
    if m is None:
        return []
    out: list[Fact] = []
    if m.oom_path:
        line = [v(m.oom_path)]
        if m.usage_kb is not None:
            limit = size(m.limit_kb) if m.limit_kb is not None else "no limit"
            line.append(t(f": {size(m.usage_kb)} used of {limit}"))
        if m.failcnt is not None:
            line.append(t(f", failcnt {m.failcnt}"))
        out.append(Fact(label="Memory cgroup", value=line))
    if m.swap_usage_kb is not None or m.memsw_usage_kb is not None:
        if m.swap_usage_kb is not None:
            lim = size(m.swap_limit_kb) if m.swap_limit_kb is not None else "no limit"
            text = f"swap {size(m.swap_usage_kb)} used of {lim}"
        else:
            lim = size(m.memsw_limit_kb) if m.memsw_limit_kb is not None else "no limit"
            text = f"memory+swap {size(m.memsw_usage_kb)} used of {lim}"
        out.append(Fact(label="Cgroup swap", value=[t(text)]))
    if m.task_path and m.task_path != m.oom_path:
        out.append(Fact(label="Victim's cgroup", value=[v(m.task_path)]))
    return out


def _owner_facts(ev: OomKillEvent) -> list[Fact]:
    k = ev.kubernetes
    if k is not None:
        if k.pod:
            line = [v(f"{k.namespace}/{k.pod}" if k.namespace else k.pod)]
            if k.container:
                line += [t(" container "), v(k.container)]
        else:
            line = [t("uid "), v(k.pod_uid)] if k.pod_uid else [t("a pod")]
            line.append(t(", name not resolved"))
        if k.qos:
            line.append(t(f" (QoS {k.qos})"))
        out = [Fact(label="Pod", value=line)]
        if k.container_id:
            out.append(Fact(label="Container id", value=[v(k.container_id[:12])]))
        return out
    c = ev.container
    if c is not None:
        ident = c.container_id[:12] if c.container_id else (c.lxc_id or c.unit)
        line = [t(f"{c.runtime + ' ' if c.runtime else ''}{c.kind}")]
        if ident:
            line += [t(" "), v(ident)]
        return [Fact(label="Owner", value=line)]
    return []


def _host_memory_fact(ev: OomKillEvent) -> Fact | None:
    mi = ev.meminfo
    if mi is None:
        return None
    parts = []
    if mi.total_ram_kb is not None:
        free = f"{size(mi.free_kb)} free of " if mi.free_kb is not None else ""
        parts.append(f"RAM {free}{size(mi.total_ram_kb)}")
    if mi.total_swap_kb is not None:
        if mi.total_swap_kb == 0:
            parts.append("no swap")
        else:
            free = f"{size(mi.free_swap_kb)} free of " if mi.free_swap_kb is not None else ""
            parts.append(f"swap {free}{size(mi.total_swap_kb)}")
    return Fact(label="Host memory then", value=[t(", ".join(parts))]) if parts else None


def _task_table(tasks: Sequence[Task], total: int) -> Section | None:
    top = sorted(tasks, key=lambda x: x.rss_kb or 0, reverse=True)[:MAX_TASKS]
    if not top:
        return None
    rows = [
        [
            str(x.pid),
            size(x.rss_kb),
            str(x.oom_score_adj) if x.oom_score_adj is not None else "",
            str(x.oom_score) if x.oom_score is not None else "",
            x.name,
        ]
        for x in top
    ]
    return Section(
        title=f"Top memory users in the report ({plural(total, 'task')})",
        table=Table(header=["pid", "rss", "adj", "score", "name"], rows=rows),
    )


def _who_is_next(procs: Sequence[ProcInfo]) -> Section | None:
    if not procs:
        return None
    rows = []
    for p in list(procs)[:WHO_IS_NEXT]:
        where = f"{p.namespace}/{p.pod}" if p.pod else (p.cgroup or "")
        rows.append(
            [
                str(p.pid),
                str(p.oom_score) if p.oom_score is not None else "",
                str(p.oom_score_adj) if p.oom_score_adj is not None else "",
                size(p.rss_kb),
                p.comm,
                where,
            ]
        )
    return Section(
        title="Who is next (highest oom_score now, on the /proc/PID/oom_score scale)",
        table=Table(header=["pid", "score", "adj", "rss", "name", "pod or cgroup"], rows=rows),
    )


def psi_text(psi: Psi | None) -> str:
    """`some 12.50 % / 8.00 % / 2.00 %, full ...` (avg10/avg60/avg300), or empty."""
    if psi is None:
        return ""
    parts = []
    for name, line in (("some", psi.some), ("full", psi.full)):
        if line is None:
            continue
        avgs = [x for x in (line.avg10, line.avg60, line.avg300) if x is not None]
        if avgs:
            parts.append(f"{name} " + " / ".join(f"{a:.2f} %" for a in avgs))
    return ", ".join(parts) + " (avg10 / avg60 / avg300)" if parts else ""


def _pressure_section(ev: OomKillEvent) -> Section | None:
    ctx = ev.context
    lines: list[Line] = []
    mi = ctx.meminfo
    if mi is not None and mi.MemTotal is not None and mi.MemAvailable is not None:
        lines.append([t(f"MemAvailable {size(mi.MemAvailable)} of {size(mi.MemTotal)}")])
    psi = psi_text(ctx.psi)
    if psi:
        lines.append([t(f"PSI memory {psi}")])
    return Section(title="Memory on the host now", lines=lines) if lines else None


def _corner_lines(ev: OomKillEvent) -> list[Line]:
    out: list[Line] = []
    for x in ev.exiting_victims:
        who = _process(x.comm, x.pid)
        out.append([t("already exiting, so the kernel waited instead of killing: "), *who])
    p = ev.mm_pinned_by
    if p is not None:
        who = _process(p.comm, p.pid) or [t("another process")]
        out.append([t("the victim's memory is shared with "), *who, t(", so it is freed later")])
    if ev.sysrq:
        out.append([t("triggered by hand (SysRq f / /proc/sysrq-trigger), not by a shortage")])
    if ev.sysrq_ignored:
        out.append([t("a manual OOM request was ignored: "), v(ev.sysrq_ignored)])
    if ev.reaper is not None and not ev.reaper.reaped:
        out.append([t("the oom_reaper could not reap the victim's memory")])
    others = [g for g in ev.group_victims if g.pid != ev.victim.pid]
    if others:
        names = ", ".join(f"{g.comm} ({g.pid})" for g in others[:10] if g.comm)
        if names:
            out.append([t("also killed (memory.oom.group): "), v(names)])
    return out


def _kill_counts(ev: OomKillEvent, bot: BotFacts | None) -> Fact | None:
    counts = []
    if bot is not None and bot.kills_24h_host is not None:
        counts.append(f"{bot.kills_24h_host} on this host")
    if bot is not None and bot.kills_24h_pod is not None:
        counts.append(f"{bot.kills_24h_pod} for this pod")
    if not counts and ev.context.kills_24h is not None:
        where = "this cgroup" if ev.memcg is not None else "this host"
        counts.append(f"{ev.context.kills_24h} in {where} (seen by the agent)")
    return Fact(label="Kills in 24 h", value=[t(", ".join(counts))]) if counts else None


def _oom_title(ev: OomKillEvent, host: str | None) -> str:
    on = f" on {host}" if host else ""
    if ev.missing_from_log:
        return f"💀 OOM kills{on} not in the kernel log"
    if ev.panic and not _killed(ev):
        return f"💀 Out of memory{on}: the kernel panicked, no process killed"
    name = _victim_title(ev)
    return f"💀 OOM kill{on}: {name}" if name else f"💀 Out of memory{on}"


def _when(ev: Event) -> Line:
    if ev.time:
        return [v(ev.time)]
    if ev.mono_usec is not None:
        return [t(f"{ev.mono_usec / 1e6:.3f} s after boot")]
    return []


def _host_facts(ev: Event) -> list[Fact]:
    facts = [Fact(label="Host", value=[v(ev.host)])] if ev.host else []
    if when := _when(ev):
        facts.append(Fact(label="When", value=when))
    return facts


def _common_notes(ev: Event, bot: BotFacts | None) -> list[Line]:
    notes: list[Line] = []
    if bot is not None and bot.silenced_until:
        notes.append([t("silenced until "), v(bot.silenced_until)])
    errors = ev.context.enrich_errors if isinstance(ev, OomKillEvent | SynFloodEvent) else []
    if errors:
        notes.append([t("host reads that failed: "), v("; ".join(errors))])
    if ev.id:
        notes.append([t("id "), v(ev.id)])
    return notes


def silence_actions(bot: BotFacts | None) -> list[Action]:
    """The Silence 1h / 24h buttons, when the bot knows what the alert would silence."""
    if bot is None or not bot.silence_target:
        return []
    return [
        Action(label="Silence 1h", action_id="kernbot_silence_1h", value=bot.silence_target),
        Action(
            label="Silence 24h",
            action_id="kernbot_silence_24h",
            value=bot.silence_target,
            style="danger",
        ),
    ]


def _why_lines(ev: OomKillEvent) -> list[Line]:
    """`Why: …` (host names in it as values), the accounting bar (a value: monospace, so its
    cells line up), the across-kills pattern."""
    ev = with_diagnosis(ev)
    out: list[Line] = []
    parts = why_parts(ev)
    if parts:
        line = [v(text) if host else t(text) for text, host in parts]
        out.append([b("Why:"), *line[1:]] if parts[0][0] == "Why: " else line)
        if parts[0][0] == "Why: ":
            out[-1].insert(1, t(" "))
    if (bar := accounting_bar(ev)) is not None:
        out.append([v(bar)])
    if ev.context.recurrence is not None:
        out.append([b("Again:"), t(" " + ev.context.recurrence.text + ".")])
    return out


def _oom_document(ev: OomKillEvent, bot: BotFacts | None) -> AlertDocument:
    host = ev.host
    where = scope(ev)
    title = _oom_title(ev, host)
    if bot is not None and bot.repeat_count > 1:
        title += f" ×{bot.repeat_count}"
    facts = _host_facts(ev)
    facts += _victim_facts(ev, where)
    if (trig := _trigger_fact(ev)) is not None:
        facts.append(trig)
    facts += _cgroup_facts(ev)
    facts += _owner_facts(ev)
    if (hm := _host_memory_fact(ev)) is not None:
        facts.append(hm)
    if (kills := _kill_counts(ev, bot)) is not None:
        facts.append(kills)
    if bot is not None and bot.repeat_count > 1:
        facts.append(Fact(label="Repeats", value=[t(f"{bot.repeat_count} kills in this alert")]))
    sections = [
        s
        for s in (
            _who_is_next(ev.context.top_oom_score or []),
            _pressure_section(ev),
            _task_table(ev.tasks, len(ev.tasks)),
        )
        if s is not None
    ]
    if corner := _corner_lines(ev):
        sections.insert(0, Section(title="Also in the report", lines=corner))
    if ev.diagnosis:
        # most likely first; a summary may quote a cgroup or a comm, so it stays inert prose
        causes = [[Span(text=f.summary, kind="prose")] for f in ev.diagnosis[:5]]
        sections.insert(0, Section(title="Likely cause", lines=causes))
    notes: list[Line] = []
    if ev.constraint:
        notes.append([t("constraint "), v(ev.constraint)])
    if ev.kernel_era:
        notes.append([t("oom_score formula of kernels "), v(ev.kernel_era)])
    if not ev.complete and not ev.missing_from_log:
        notes.append([t("⚠ the report is incomplete in the log")])
    if ev.lines_omitted:
        notes.append([t(f"{plural(ev.lines_omitted, 'report line')} not kept")])
    if ev.context.pod_source:
        notes.append([t(ev.context.pod_source)])
    notes += _warned_note(ev, bot)
    notes += _common_notes(ev, bot)
    fallback = _oom_title(ev, host).removeprefix("💀 ")
    return AlertDocument(
        kind=ev.kind,
        title=title,
        why=_why_lines(ev),
        headline=_oom_headline(ev, where, host),
        facts=facts,
        sections=sections,
        advice=list(ev.advice),
        notes=notes,
        actions=silence_actions(bot),
        fallback=fallback,
    )


def _listen_spec(ev: SynFloodEvent) -> str:
    if ev.addr:
        addr = f"[{ev.addr}]" if ev.family == "ipv6" else ev.addr
        return f"{addr}:{ev.port}" if ev.port is not None else addr
    return f"port {ev.port}" if ev.port is not None else ""


def _rates_table(title: str, values: dict[str, float]) -> Section | None:
    if not values:
        return None
    rows = [[k, f"{x:.1f}/s"] for k, x in values.items()]
    return Section(title=title, table=Table(header=["counter", "rate"], rows=rows))


def _syn_document(ev: SynFloodEvent, bot: BotFacts | None) -> AlertDocument:
    host = ev.host
    ctx = ev.context
    spec = _listen_spec(ev)
    title = "🌊 SYN flood" + (f" on {host}" if host else "")
    title += f", port {ev.port}" if ev.port is not None else ""
    if bot is not None and bot.repeat_count > 1:
        title += f" ×{bot.repeat_count}"
    did = (
        [t("is answering with SYN cookies")]
        if ev.action == "cookies"
        else [b("is dropping connection requests"), t(" (net.ipv4.tcp_syncookies = 0)")]
    )
    headline = [t("The kernel"), *([t(" on "), v(host)] if host else []), t(" "), *did]
    headline += [t(" for "), v(spec), t(": its SYN queue is full.")] if spec else [t(".")]
    facts = _host_facts(ev)
    if spec:
        extra = f" ({ev.family}" + (", proto " if ev.proto else "")
        facts.append(
            Fact(
                label="Listener",
                value=[v(spec), t(extra), *([v(ev.proto)] if ev.proto else []), t(")")],
            )
        )
    ls = ctx.listener
    if ls is not None:
        if owner := _process(ls.comm, ls.pid):
            facts.append(Fact(label="Owner", value=owner))
        queues = []
        if ls.accept_queue is not None and ls.backlog is not None:
            queues.append(f"accept queue {ls.accept_queue} of backlog {ls.backlog}")
        if ls.syn_recv is not None:
            queues.append(f"{ls.syn_recv} half-open (SYN_RECV)")
        if queues:
            facts.append(Fact(label="Queues", value=[t(", ".join(queues))]))
    episode = []
    if ev.episode:
        episode.append({"start": "started", "ongoing": "ongoing", "ended": "ended"}[ev.episode])
    if ctx.duration_s is not None:
        secs = int(ctx.duration_s)
        episode.append(f"lasted {secs} s" if ev.episode == "ended" else f"{secs} s so far")
    if episode or ctx.started:
        line = [t(", ".join(episode) or "seen")]
        if ctx.started:
            line += [t(", since "), v(ctx.started)]
        facts.append(Fact(label="Episode", value=line))
    elif not ev.episode:
        facts.append(Fact(label="Episode", value=[t("seen once in the log")]))
    if ctx.verdict_text:
        facts.append(Fact(label="Verdict", value=[t(ctx.verdict_text)]))
    if bot is not None and bot.repeat_count > 1:
        facts.append(Fact(label="Repeats", value=[t(f"{bot.repeat_count} in this alert")]))
    sections = [
        s
        for s in (
            _rates_table("Counters now", ctx.counter_rates) if ev.episode != "ended" else None,
            _rates_table("Peak rates", ctx.peak_rates),
            Section(
                title="Sysctls",
                table=Table(
                    header=["sysctl", "value"], rows=[[k, str(x)] for k, x in ctx.sysctls.items()]
                ),
            )
            if ctx.sysctls
            else None,
        )
        if s is not None
    ]
    notes: list[Line] = []
    if ctx.source == "counters":
        notes.append([t("opened from the TcpExt counters (the kernel warns once per listener)")])
    notes += _common_notes(ev, bot)
    return AlertDocument(
        kind=ev.kind,
        title=title,
        headline=headline,
        facts=facts,
        sections=sections,
        advice=list(ev.advice),
        notes=notes,
        actions=silence_actions(bot),
        fallback=title.removeprefix("🌊 ").split(" ×")[0],
    )


def kill_line(ev: OomKillEvent) -> Line:
    """One OOM kill in a list (`/oom HOST`): when, who, why, in the alert's words."""
    out: Line = [v(ev.time), t(" ")] if ev.time else []
    who = _victim_spans(ev)
    where = scope(ev)
    if ev.missing_from_log:
        out.append(t("kills counted by /proc/vmstat, not in the kernel log"))
    elif ev.panic and not who:
        out.append(t("no process was killed: the kernel panicked"))
    else:
        out += who or [t("victim not in the log")]
    if ev.victim.oom_score is not None:
        out.append(t(f", oom_score {ev.victim.oom_score} {_score_scale(where)}".rstrip()))
    cause = _cause(ev, where)
    if cause:
        out += [t(" — "), *cause]
    return out


def syn_line(ev: SynFloodEvent) -> Line:
    """One SYN flood in a list (`/synflood HOST`)."""
    out: Line = [v(ev.time), t(" ")] if ev.time else []
    spec = _listen_spec(ev)
    out += [v(spec), t(" ")] if spec else []
    out.append(t("SYN cookies" if ev.action == "cookies" else "dropping connection requests"))
    if ev.episode:
        out.append(t(f" (episode {ev.episode})"))
    return out


def _risk_document(ev: Any, bot: BotFacts | None) -> AlertDocument:
    from kernbot.core.risk.alert import risk_document  # it builds on this module

    return risk_document(ev, bot)


def _warned_note(ev: OomKillEvent, bot: BotFacts | None) -> list[Line]:
    """The kill alert's pointer to the OOM-risk warning that came before it."""
    from kernbot.core.risk.alert import related_line
    from kernbot.core.risk.summary import warned_before

    warned = warned_before(ev)
    if warned is None or not ev.risk_id:
        return []
    return [[t(f"⚠ kernbot warned {warned} earlier: "), v(ev.risk_id), *related_line(bot)]]


def _generic_document(ev: Event, bot: BotFacts | None) -> AlertDocument:
    """A kind without its own builder yet (a newer agent's): what every event carries."""
    on = f" on {ev.host}" if ev.host else ""
    title = f"{ev.kind.replace('_', ' ')}{on}"
    return AlertDocument(
        kind=ev.kind,
        title=title,
        headline=[t("A "), v(ev.kind), t(" event"), *_on(ev.host), t(".")],
        facts=_host_facts(ev),
        advice=list(ev.advice),
        notes=_common_notes(ev, bot),
        actions=silence_actions(bot),
        fallback=title,
    )


Builder = Callable[[Any, "BotFacts | None"], AlertDocument]

BUILDERS: dict[str, Builder] = {
    "oom_kill": _oom_document,
    "syn_flood": _syn_document,
    "oom_risk": _risk_document,
}
"""Event kind -> its document builder; a new kind registers here (and its advice rules in
kernbot.core.advice.RULES)."""


def build_alert(event: Event, bot: BotFacts | None = None) -> AlertDocument:
    """The alert document of one event (`bot`: what the bot adds; None for `kernbot scan`)."""
    return BUILDERS.get(event.kind, _generic_document)(event, bot)


def facts_of(doc: AlertDocument) -> Iterable[tuple[str, str]]:
    """(label, text) of every fact, for comparing renders."""
    return ((f.label, plain_text(f.value)) for f in doc.facts)
