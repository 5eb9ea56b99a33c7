"""Answers to slash commands as Block Kit messages (`/oom`, `/synflood`, `/kernbot ...`).

Same rules as the alerts (`render`, kernbot.core.alert): host values in code spans or ```
blocks, the same words and units, no placeholder for a value not known. Slack limits are enforced
by `blocks`. Each answer says where its data came from: the live agent, or the bot's store when
the agent did not answer.
"""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from kernbot.bot import blocks as bk
from kernbot.bot.escape import code_block, inline_code, mrkdwn, plain
from kernbot.bot.ports import (
    AgentInfo,
    DmesgAnswer,
    FleetRisks,
    FleetRow,
    FleetSummary,
    HostAnswer,
    Message,
    OomHostAnswer,
    Silence,
    SynHostAnswer,
    TopAnswer,
    UnknownHost,
)
from kernbot.bot.render import human_kb, spans
from kernbot.core.alert import kill_line, psi_text, syn_line, t, v
from kernbot.core.context import ProcInfo
from kernbot.core.oom.why import why_parts, with_diagnosis
from kernbot.core.risk.alert import risk_line

HELP = """\
*kernbot* tells you when the kernel OOM-kills a process or sees a SYN flood.
• `/oom HOST` — recent OOM kills on HOST, top processes by oom_score, memory pressure now
• `/oom` — kills across the fleet in the last 24 h, repeat offenders
• `/synflood HOST` — listeners and their queues, SYN cookie counters, sysctls, recent floods
• `/kernbot hosts` — agents and their last heartbeat
• `/kernbot risks` — cgroups and hosts about to run out of memory, fleet-wide, worst first
• `/kernbot top HOST` — processes most likely to be killed next
• `/kernbot dmesg HOST [FILTER]` — the last kernel log lines, optionally only those with FILTER
• `/kernbot silence TARGET DURATION [REASON]` — e.g. `/kernbot silence host:web-1 2h deploy` \
or `pod:shop/cart 30m` (also `namespace:NAME`); announced in the alert channel
• `/kernbot silences` — the active silences with their ids
• `/kernbot unsilence ID|TARGET` — end a silence early
• `/kernbot help` — this message"""

MAX_RISKS = 20


def _source_note(answer: HostAnswer) -> str:
    if answer.agent_reachable and not answer.from_store:
        return f"live from the agent on {inline_code(answer.host)}"
    why = f" ({mrkdwn(answer.agent_error)})" if answer.agent_error else ""
    if answer.from_store:
        return f"⚠ the agent did not answer{why}: showing what the bot stored earlier"
    return f"⚠ the agent did not answer{why}"


def _procs_table(procs: list[ProcInfo]) -> str:
    rows = [f"{'pid':>8} {'score':>6} {'adj':>5} {'rss':>10}  name / pod"]
    for p in procs:
        where = f"  {p.namespace}/{p.pod}" if p.pod else ""
        score = "" if p.oom_score is None else str(p.oom_score)
        adj = "" if p.oom_score_adj is None else str(p.oom_score_adj)
        rows.append(
            f"{p.pid:>8} {score:>6} {adj:>5} {human_kb(p.rss_kb):>10}  {p.comm[:32]}{where}"
        )
    return "\n".join(rows)


def render_oom_host(a: OomHostAnswer) -> Message:
    blocks: list[Block] = [bk.header(plain(f"OOM on {a.host}")), bk.context([_source_note(a)])]
    if a.events:
        lines = []
        for e in a.events[:10]:  # newest first, as the agent and the store return them
            lines.append(f"• {spans(kill_line(e))}")
            # the cause of each kill (diagnosed from its lines when an older agent sent none)
            why = why_parts(with_diagnosis(e))
            if why:
                lines.append("    " + spans([v(x) if host else t(x) for x, host in why]))
        blocks.append(bk.section(f"*Recent kills* ({len(a.events)})\n" + "\n".join(lines)))
    else:
        blocks.append(bk.section("No OOM kills recorded recently."))
    if a.top:
        head = "*Who is next* (highest oom_score now, on the /proc/PID/oom_score scale)\n"
        blocks.append(bk.section(head + code_block(_procs_table(a.top[:10]), 2900)))
    pressure = []
    total, avail = a.meminfo.get("MemTotal"), a.meminfo.get("MemAvailable")
    if total is not None and avail is not None:
        pressure.append(f"MemAvailable {human_kb(avail)} of {human_kb(total)}")
    if psi := psi_text(a.psi):
        pressure.append(f"PSI memory {psi}")
    if pressure:
        blocks.append(bk.section("*Memory on the host now*\n" + "\n".join(pressure)))
    if a.risks:
        lines = [f"• {spans(risk_line(r))}" for r in a.risks[:MAX_RISKS]]
        blocks.append(bk.section(f"*At risk of OOM now* ({len(a.risks)})\n" + "\n".join(lines)))
    elif a.agent_reachable:
        blocks.append(bk.section("No cgroup is near its memory limit now."))
    return bk.message(f"OOM on {mrkdwn(a.host)}: {len(a.events)} recent kills", blocks)


def render_risks(f: FleetRisks) -> Message:
    """`/kernbot risks`: every open OOM-risk episode of the live agents, worst first."""
    title = f"OOM risks across the fleet: {len(f.risks)}"
    notes = [f"{f.hosts_asked} live agents asked"]
    if f.unreachable:
        notes.append("unreachable: " + ", ".join(inline_code(h) for h in f.unreachable[:10]))
    blocks: list[Block] = [bk.header(plain(title)), bk.context(notes)]
    lines = [f"• {inline_code(r.host or '')} {spans(risk_line(r))}" for r in f.risks[:MAX_RISKS]]
    blocks.append(
        bk.section("\n".join(lines) if lines else "No cgroup or host is near its memory limit now.")
    )
    return bk.message(title, blocks)


def render_oom_fleet(s: FleetSummary) -> Message:
    blocks: list[Block] = [
        bk.header(plain(f"OOM kills across the fleet: {s.total_kills}")),
        bk.context([f"since {inline_code(s.since)}", f"{s.syn_floods} SYN floods"]),
    ]

    def row(r: FleetRow) -> str:
        name = f"{r.namespace}/{r.pod}" if r.namespace else r.pod
        pod = f" pod {inline_code(name)}" if name else ""
        victim = f" {inline_code(r.victim)}" if r.victim else ""
        return f"• {inline_code(r.host)}{pod}{victim}: {r.kills}"

    if s.by_host:
        blocks.append(bk.section("*Kills per host/pod*\n" + "\n".join(map(row, s.by_host[:30]))))
    if s.repeat_offenders:
        text = "\n".join(map(row, s.repeat_offenders[:20]))
        blocks.append(bk.section("*Repeat offenders* (killed more than once)\n" + text))
    if not s.by_host:
        blocks.append(bk.section("No OOM kills in this window. 🎉"))
    return bk.message(f"{s.total_kills} OOM kills across the fleet since {mrkdwn(s.since)}", blocks)


def render_syn_host(a: SynHostAnswer) -> Message:
    blocks: list[Block] = [bk.header(plain(f"SYN on {a.host}")), bk.context([_source_note(a)])]
    if a.listeners:
        rows = [f"{'address':<28} {'accept q':>12} {'syn_recv':>8}  process"]
        for lst in a.listeners[:30]:
            addr = f"[{lst.addr}]:{lst.port}" if ":" in lst.addr else f"{lst.addr}:{lst.port}"
            queue = (
                f"{lst.accept_queue}/{lst.backlog}"
                if lst.accept_queue is not None and lst.backlog is not None
                else ""
            )
            half = "" if lst.syn_recv is None else str(lst.syn_recv)
            owner = " ".join(str(x) for x in (lst.comm, lst.pid) if x is not None)
            rows.append(f"{addr:<28} {queue:>12} {half:>8}  {owner}")
        blocks.append(bk.section("*Listeners*\n" + code_block("\n".join(rows), 2900)))
    if a.counter_rates:
        rows = [f"{k:<24} {v:.1f}/s" for k, v in a.counter_rates.items()]
        blocks.append(bk.section("*TcpExt counters*\n" + code_block("\n".join(rows), 2900)))
    if a.sysctls:
        rows = [f"{k:<34} {v}" for k, v in a.sysctls.items()]
        blocks.append(bk.section("*Sysctls*\n" + code_block("\n".join(rows), 2900)))
    if a.events:
        lines = [f"• {spans(syn_line(e))}" for e in a.events[:10]]  # newest first
        blocks.append(bk.section("*Recent floods*\n" + "\n".join(lines)))
    else:
        blocks.append(bk.section("No SYN floods recorded recently."))
    return bk.message(f"SYN flood status of {mrkdwn(a.host)}", blocks)


def render_hosts(agents: list[AgentInfo]) -> Message:
    stale = sum(a.stale for a in agents)
    lines = []
    for a in sorted(agents, key=lambda a: (not a.stale, a.host)):
        flag = "🔇 *stale*" if a.stale else "✅"
        source = f" {inline_code(a.source)}" if a.source else ""
        health = "" if a.source_healthy else f", log source{source} unhealthy"
        lost = f", {a.records_lost} records lost" if a.records_lost else ""
        seen = inline_code(a.last_seen) if a.last_seen else "never"
        kernel = f", kernel {inline_code(a.kernel)}" if a.kernel else ""
        lines.append(f"{flag} {inline_code(a.host)} last seen {seen}{kernel}{health}{lost}")
    blocks: list[Block] = [bk.header(plain(f"{len(agents)} agents, {stale} stale"))]
    for i in range(0, len(lines), 40):
        blocks.append(bk.section("\n".join(lines[i : i + 40])))
    if not agents:
        blocks.append(bk.section("No agent has reported yet."))
    return bk.message(f"{len(agents)} agents, {stale} stale", blocks)


def render_top(a: TopAnswer) -> Message:
    blocks: list[Block] = [
        bk.header(plain(f"Top oom_score on {a.host}")),
        bk.context([_source_note(a)]),
    ]
    if a.processes:
        blocks.append(bk.section(code_block(_procs_table(a.processes[:25]), bk.SECTION_MAX)))
    else:
        blocks.append(bk.section("No process information."))
    return bk.message(f"Top processes by oom_score on {mrkdwn(a.host)}", blocks)


def render_dmesg(a: DmesgAnswer, grep: str | None = None) -> Message:
    title = f"dmesg on {a.host}" + (f" matching {grep}" if grep else "")
    blocks: list[Block] = [bk.header(plain(title)), bk.context([_source_note(a)])]
    if a.lines:
        chunk: list[str] = []
        size = 0
        for line in a.lines:
            if chunk and size + len(line) > 2600:
                blocks.append(bk.section(code_block("\n".join(chunk), bk.SECTION_MAX)))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line) + 1
        blocks.append(bk.section(code_block("\n".join(chunk), bk.SECTION_MAX)))
    else:
        blocks.append(bk.section("No matching lines."))
    if a.truncated:
        blocks.append(bk.context(["older lines left out"]))
    return bk.message(mrkdwn(title), blocks)


def render_silence(s: Silence) -> Message:
    by = f" by <@{s.by}>" if s.by and s.by.isalnum() else ""
    text = f"🔕 {inline_code(s.target)} silenced until {inline_code(s.until)}{by} (#{s.id})."
    text += " The alert channel has been told; `/kernbot unsilence` ends it."
    return bk.message(text, [bk.section(text)])


def _silence_line(s: Silence) -> str:
    by = f" by <@{s.by}>" if s.by and s.by.isalnum() else ""
    reason = f" — {mrkdwn(s.reason)}" if s.reason else ""
    return f"• #{s.id} `{mrkdwn(s.target)}` until {mrkdwn(s.until)}{by}{reason}"


def render_silences(items: list[Silence]) -> Message:
    if not items:
        return render_text("No active silences: every alert is posted.")
    body = "\n".join(_silence_line(s) for s in items[:40])
    if len(items) > 40:
        body += f"\n… and {len(items) - 40} more"
    title = f"{len(items)} active silence{'s' if len(items) != 1 else ''}"
    return bk.message(title, [bk.section(f"*{title}*\n{body}")])


def render_unsilenced(ref: str, items: list[Silence]) -> Message:
    if not items:
        return render_text(
            f"No active silence matches `{mrkdwn(ref)}`; `/kernbot silences` lists them."
        )
    lines = [
        f"🔔 #{s.id} `{mrkdwn(s.target)}` ended; it held back {s.held_back or 0} alert(s)."
        for s in items
    ]
    text = "\n".join(lines) + "\nThe alert channel has been told."
    return bk.message(lines[0], [bk.section(text)])


def render_unknown_host(err: UnknownHost) -> Message:
    text = f"I don't know a {err.what} called {inline_code(err.host)}."
    if err.suggestions:
        text += " Did you mean " + ", ".join(inline_code(s) for s in err.suggestions[:5]) + "?"
    text += " `/kernbot hosts` lists them all."
    return bk.message(text, [bk.section(text)])


def render_help() -> Message:
    return bk.message("kernbot commands", [bk.section(HELP)])


def render_text(text: str) -> Message:
    """A one-paragraph answer; `text` is ours and already escaped where it quotes user input."""
    return bk.message(text, [bk.section(text)])
