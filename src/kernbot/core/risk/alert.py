"""The alert document of an `oom_risk` episode (kernbot.core.alert): one message per episode,
re-rendered as it goes, for Slack, `kernbot up`'s console and any other renderer.

Names (a pod, a cgroup path, a comm) are host values (`v`), never our words, so every renderer
shows them literally and inert. `risk_line` is the one-line form for lists (`/oom HOST`,
`/kernbot risks`).
"""

from __future__ import annotations

from kernbot.core.alert import (
    AlertDocument,
    BotFacts,
    Fact,
    Line,
    Section,
    Table,
    link,
    silence_actions,
    t,
    v,
)
from kernbot.core.events import OomRiskEvent
from kernbot.core.risk.summary import duration, headline, who
from kernbot.core.units import size

MAX_TOP = 5
_STATE = {
    "start": "warning",
    "ongoing": "warning, still at risk",
    "ended": "over: back under the end threshold",
    "killed": "the OOM killer struck",
}


def _live(ev: OomRiskEvent) -> bool:
    return ev.state in ("start", "ongoing")


def _level(ev: OomRiskEvent) -> str:
    pct = f"{ev.percent:.0f} %" if ev.percent is not None else "near the limit"
    return f"{pct} of its {size(ev.limit_kb)} limit" if ev.limit_kb else pct


def _trend(ev: OomRiskEvent) -> str:
    if not _live(ev) or not ev.growth_kb_per_s or ev.growth_kb_per_s <= 0:
        return ""
    text = f", growing {size(int(ev.growth_kb_per_s * 60))}/min"
    if ev.eta_s is not None:
        text += f": the limit in {duration(ev.eta_s)}"
    return text


def related_line(bot: BotFacts | None) -> Line:
    """` (posted in C0123 at 09:15:03 UTC, open it)`: where the other alert of a warning/kill
    pair is, with a link to it when Slack gave its permalink."""
    if bot is None or not bot.related_channel:
        return []
    out: Line = [t(" (posted in "), v(bot.related_channel)]
    if bot.related_at:
        out += [t(" at "), v(bot.related_at)]
    if bot.related_link:
        out += [t(", "), link("open it", bot.related_link)]
    return [*out, t(")")]


def _headline(ev: OomRiskEvent, bot: BotFacts | None) -> Line:
    on: Line = [t(" on "), v(ev.host)] if ev.host and ev.cgroup != "/" else []
    name = v(who(ev))
    if ev.state == "killed":
        out: Line = [name, *on, t(" was OOM-killed after this warning: see the kill alert")]
        if ev.kill_id:
            out += [t(" "), v(ev.kill_id)]
        return [*out, *related_line(bot), t(".")]
    if ev.state == "ended":
        peak = f" (peak {ev.peak_percent:.0f} %)" if ev.peak_percent is not None else ""
        return [name, *on, t(f" is back to {_level(ev)}{peak}: the risk is over.")]
    out = [name, *on, t(f" is at {_level(ev)}{_trend(ev)}.")]
    if "psi" in ev.reasons and ev.psi is not None and ev.psi.full_avg10 is not None:
        out.append(t(f" Its tasks stalled on memory {ev.psi.full_avg10:.0f} % of the last 10 s."))
    return out


def _facts(ev: OomRiskEvent) -> list[Fact]:
    facts = [Fact(label="Host", value=[v(ev.host)])] if ev.host else []
    if ev.cgroup != "/":
        facts.append(Fact(label="Cgroup", value=[v(ev.cgroup)]))
    if ev.working_set_kb is not None and ev.limit_kb:
        ws = f"{size(ev.working_set_kb)} of {size(ev.limit_kb)}"
        if ev.percent is not None:
            ws += f" ({ev.percent:.0f} %)"
        facts.append(Fact(label="Working set", value=[t(ws)]))
    if ev.usage_kb is not None:
        facts.append(Fact(label="Usage", value=[t(f"{size(ev.usage_kb)} (with page cache)")]))
    if _live(ev) and ev.growth_kb_per_s is not None:
        mib_min = ev.growth_kb_per_s * 60 / 1024
        facts.append(Fact(label="Growth", value=[t(f"{mib_min:+.1f} MiB/min")]))
    if _live(ev) and ev.eta_s is not None:
        facts.append(Fact(label="Time to limit", value=[t(duration(ev.eta_s))]))
    if ev.psi is not None and (ev.psi.some_avg10 is not None or ev.psi.full_avg10 is not None):
        parts = [
            f"{k} {x:.1f} %"
            for k, x in (("some", ev.psi.some_avg10), ("full", ev.psi.full_avg10))
            if x is not None
        ]
        facts.append(Fact(label="Memory PSI (avg10)", value=[t(", ".join(parts))]))
    if ev.high_kb is not None:
        facts.append(Fact(label="memory.high", value=[t(size(ev.high_kb))]))
    facts.append(Fact(label="Episode", value=_episode(ev)))
    if ev.memory_events:
        counters = ", ".join(f"{k} {n}" for k, n in ev.memory_events.items())
        facts.append(Fact(label="Cgroup counters", value=[v(counters)]))
    return facts


def _episode(ev: OomRiskEvent) -> Line:
    out: Line = [t(_STATE[ev.state])]
    if ev.started:
        out += [t(", since "), v(ev.started)]
    if ev.ended:
        out += [t(", until "), v(ev.ended)]
    if ev.peak_percent is not None:
        out.append(t(f", peak {ev.peak_percent:.0f} %"))
    return out


def _pressure_facts(ev: OomRiskEvent) -> list[Fact]:
    out: list[Fact] = []
    if ev.psi is not None:
        pairs = (("some", ev.psi.some_avg10), ("full", ev.psi.full_avg10))
        parts = [f"{k} {x:.1f} %" for k, x in pairs if x is not None]
        if parts:
            out.append(Fact(label="Memory PSI (avg10)", value=[t(", ".join(parts))]))
    if ev.high_kb is not None:
        out.append(Fact(label="memory.high", value=[t(size(ev.high_kb))]))
    return out


def _top_section(ev: OomRiskEvent) -> Section | None:
    if not ev.top:
        return None
    rows = []
    for p in ev.top[:MAX_TOP]:
        grew = (
            f"{p.growth_kb_per_s * 60 / 1024:+.1f} MiB/min" if p.growth_kb_per_s is not None else ""
        )
        rows.append([str(p.pid), size(p.rss_kb), grew, p.comm])
    table = Table(header=["pid", "rss", "growth", "name"], rows=rows)
    return Section(title="Largest processes", table=table)


def risk_document(ev: OomRiskEvent, bot: BotFacts | None) -> AlertDocument:
    title = headline(ev)
    if bot is not None and bot.repeat_count > 1:
        title += f" ×{bot.repeat_count}"
    notes: list[Line] = []
    if bot is not None and bot.silenced_until:
        notes.append([t("silenced until "), v(bot.silenced_until)])
    if ev.id:
        notes.append([t("id "), v(ev.id), t(f", revision {ev.revision}")])
    actions = silence_actions(bot) if _live(ev) else []
    top = _top_section(ev)
    return AlertDocument(
        kind=ev.kind,
        title=title,
        headline=_headline(ev, bot),
        facts=_facts(ev),
        sections=[top] if top is not None else [],
        advice=list(ev.advice) if _live(ev) else [],
        notes=notes,
        actions=actions,
        fallback=title,
    )


def risk_line(ev: OomRiskEvent) -> Line:
    """One open episode in a list: who, how full, how soon, where."""
    out: Line = [v(who(ev)), t(f" at {_level(ev)}{_trend(ev)}")]
    if ev.cgroup != "/":
        out += [t(" "), v(ev.cgroup)]
    return out
