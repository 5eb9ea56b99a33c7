"""Alerts and notices as Block Kit messages: what a senior SRE would look up first, on one screen.

Every value that came from a host goes through `escape` before it is placed in mrkdwn or
plain_text; `blocks` enforces Slack's size limits. The plain `text` fallback (notifications,
screen readers) carries the one-line summary.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

from slack_sdk.models.blocks import Block

from kernbot.bot import blocks as bk
from kernbot.bot.escape import code_block, mrkdwn, plain, truncate
from kernbot.bot.ports import AlertView, Message, Notice
from kernbot.core.events import Advice, OomKillEvent, SynFloodEvent
from kernbot.core.oom.why import head_lines
from kernbot.core.wire import Listener

SILENCE_ACTIONS = {"kernbot_silence_1h": 3600.0, "kernbot_silence_24h": 86400.0}
"""action_id of each Silence button -> how long it silences (seconds)."""
MAX_ADVICE = 6
MAX_TASKS = 8


def human_kb(kb: int | None) -> str:
    if kb is None:
        return "?"
    value, unit = float(kb), "KiB"
    for next_unit in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, next_unit
    return f"{value:.0f} {unit}" if unit == "KiB" else f"{value:.1f} {unit}"


def describe(value: Any) -> str:
    """A context value of unknown shape (str, number, dict) as one escaped line."""
    if isinstance(value, dict):
        return ", ".join(f"{mrkdwn(k)}={mrkdwn(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(mrkdwn(v) for v in value)
    return mrkdwn(value)


def silence_target(view: AlertView) -> str:
    """What the Silence buttons silence: the pod when known, else the host."""
    event = view.event
    k8s = event.kubernetes if isinstance(event, OomKillEvent) else None
    if k8s is not None and k8s.namespace and k8s.pod:
        return f"pod:{k8s.namespace}/{k8s.pod}"
    return f"host:{event.host or 'unknown'}"


def advice_blocks(advice: Iterable[Advice]) -> list[Block]:
    out: list[Block] = []
    items = list(advice)
    for item in items[:MAX_ADVICE]:
        icon = {"critical": "🔴", "warning": "🟠", "info": "🔵"}.get(item.severity, "•")
        text = f"{icon} *{mrkdwn(item.title)}*\n{mrkdwn(item.why, multiline=True)}"
        if item.commands:
            text = truncate(text, 1500)
            budget = bk.SECTION_MAX - len(text) - 1
            text += "\n" + code_block("\n".join(item.commands), budget)
        out.append(bk.section(text))
    if len(items) > MAX_ADVICE:
        out.append(bk.context([f"{len(items) - MAX_ADVICE} more suggestions not shown"]))
    return out


def encode_target(target: str) -> str:
    """Button values are data, never shown; percent-encoded so no markup travels in a message."""
    return quote(target, safe=":/@")


def decode_target(value: str) -> str:
    return unquote(value)


def _silence_buttons(view: AlertView) -> Block:
    target = encode_target(silence_target(view))
    return bk.actions(
        [
            bk.button("Silence 1h", "kernbot_silence_1h", target),
            bk.button("Silence 24h", "kernbot_silence_24h", target, style="danger"),
        ],
        block_id="kernbot_silence",
    )


def _oom_where(event: OomKillEvent) -> str:
    memcg = event.memcg
    if memcg is not None and (memcg.oom_path or memcg.usage_kb is not None):
        limit = human_kb(memcg.limit_kb) if memcg.limit_kb is not None else "unlimited"
        where = f"memory cgroup `{mrkdwn(memcg.oom_path or '?')}` hit its limit"
        return f"{where} ({human_kb(memcg.usage_kb)} used of {limit})"
    if event.global_oom or (event.constraint or "").endswith("NONE"):
        return "the whole host ran out of memory (system-wide)"
    return f"constraint {mrkdwn(event.constraint or 'unknown')}"


def _oom_fields(view: AlertView, event: OomKillEvent) -> list[tuple[str, str]]:
    v, t = event.victim, event.trigger
    score = f"{v.oom_score}" if v.oom_score is not None else "?"
    if v.oom_score_adj:
        score += f" (oom_score_adj {v.oom_score_adj})"
    if v.printed_score is not None:
        score += f", kernel printed {v.printed_score}"
    rss = (
        f"anon {human_kb(v.anon_rss_kb)}, file {human_kb(v.file_rss_kb)}, "
        f"shmem {human_kb(v.shmem_rss_kb)}\ntotal-vm {human_kb(v.total_vm_kb)}"
    )
    pairs = [
        ("Host", mrkdwn(event.host or "unknown")),
        ("When", mrkdwn(event.time or "unknown")),
        (
            "Victim",
            f"`{mrkdwn(v.comm or '?')}` pid {v.pid}"
            + (f", uid {v.uid}" if v.uid is not None else ""),
        ),
        ("oom_score", score),
        ("Memory (RSS)", rss),
    ]
    if t.comm is not None and (t.comm != v.comm or t.pid != v.pid):
        asked = [f"`{mrkdwn(t.comm)}`"]
        if t.pid is not None:
            asked.append(f"pid {t.pid}")
        if t.order is not None:
            asked.append(f"order {t.order}")
        if t.gfp_mask:
            asked.append(f"gfp {mrkdwn(t.gfp_mask)}")
        pairs.append(("Asked for memory", ", ".join(asked)))
    if event.memcg is not None and event.memcg.task_path:
        pairs.append(("Victim's cgroup", f"`{mrkdwn(event.memcg.task_path)}`"))
    if event.meminfo is not None and event.meminfo.total_ram_kb:
        mi = event.meminfo
        pairs.append(
            (
                "Host memory",
                f"{human_kb(mi.free_kb)} free of {human_kb(mi.total_ram_kb)}, "
                f"swap {human_kb(mi.free_swap_kb)} free of {human_kb(mi.total_swap_kb)}",
            )
        )
    k8s = event.kubernetes
    if k8s is not None and (k8s.pod or k8s.pod_uid):
        pod = f"{mrkdwn(k8s.namespace or '?')}/{mrkdwn(k8s.pod or k8s.pod_uid)}"
        if k8s.container:
            pod += f" container {mrkdwn(k8s.container)}"
        if k8s.qos:
            pod += f" ({k8s.qos})"
        pairs.append(("Pod", pod))
    counts = []
    if view.kills_24h_host is not None:
        counts.append(f"{view.kills_24h_host} on this host")
    if view.kills_24h_pod is not None:
        counts.append(f"{view.kills_24h_pod} for this pod")
    if counts:
        pairs.append(("Kills in 24 h", ", ".join(counts)))
    if view.repeat_count > 1:
        pairs.append(("Repeats", f"{view.repeat_count} kills grouped in this alert"))
    return pairs


def _tasks_block(event: OomKillEvent) -> list[Block]:
    tasks = sorted(event.tasks, key=lambda t: t.rss_kb or 0, reverse=True)[:MAX_TASKS]
    if not tasks:
        return []
    rows = [f"{'pid':>8} {'rss':>10} {'adj':>5}  name"]
    rows += [
        f"{t.pid:>8} {human_kb(t.rss_kb):>10} {t.oom_score_adj or 0:>5}  {t.name[:40]}"
        for t in tasks
    ]
    head = f"*Top memory users in the report* ({len(event.tasks)} tasks)\n"
    return [bk.section(head + code_block("\n".join(rows), bk.SECTION_MAX - len(head)))]


def _oom_alert(view: AlertView, event: OomKillEvent) -> Message:
    v = event.victim
    host = event.host or "unknown host"
    title = f"💀 OOM kill on {host}: {v.comm or '?'} ({v.pid})"
    if view.repeat_count > 1:
        title += f" ×{view.repeat_count}"
    summary = (
        f"The kernel killed *{mrkdwn(v.comm or '?')}* (pid {v.pid}) on *{mrkdwn(host)}*: "
        f"{_oom_where(event)}."
    )
    if event.panic:
        summary += "\n*The kernel panicked* (panic_on_oom) instead of killing a process."
    if event.group_kill:
        summary += f"\nmemory.oom.group: {len(event.group_victims) + 1} processes killed together."
    blocks: list[Block] = [bk.header(plain(title))]
    head = head_lines(event)
    if head:  # Why first, the accounting bar (monospace so the cells line up), the pattern
        text = [f"*{mrkdwn(head[0])}*"] + [
            f"`{mrkdwn(line)}`" if line.startswith("[") else mrkdwn(line) for line in head[1:]
        ]
        blocks.append(bk.section("\n".join(text)))
    blocks += [bk.section(summary)]
    blocks += bk.fields(_oom_fields(view, event))
    blocks += _tasks_block(event)
    blocks += advice_blocks(event.advice)
    notes = [mrkdwn(f"constraint {event.constraint}") if event.constraint else ""]
    if event.kernel_era:
        notes.append(f"oom_score formula {mrkdwn(event.kernel_era)}")
    if not event.complete:
        notes.append("⚠ report truncated in the log")
    if event.missing_from_log:
        notes.append("⚠ counted by the kernel, log lines lost")
    if view.silenced_until:
        notes.append(f"silenced until {mrkdwn(view.silenced_until)}")
    if event.id:
        notes.append(f"id {mrkdwn(event.id)}")
    blocks += [bk.context(notes), _silence_buttons(view)]
    fallback = f"OOM kill on {mrkdwn(host)}: {mrkdwn(v.comm or '?')} (pid {v.pid})"
    return bk.message(fallback, blocks)


def _listener_text(event: SynFloodEvent) -> str:
    raw = event.context.get("listener")
    try:
        lst = Listener.model_validate(raw) if isinstance(raw, dict) else None
    except ValueError:
        lst = None
    addr = event.addr or "*"
    where = f"`{mrkdwn(f'[{addr}]' if ':' in addr else addr)}:{event.port}`"
    if lst is None:
        return where + " (owner unknown)"
    owner = f"`{mrkdwn(lst.comm or '?')}` pid {lst.pid}" if lst.pid else "owner unknown"
    queue = ""
    if lst.backlog is not None:
        queue = f"\naccept queue {lst.accept_queue}/{lst.backlog}, SYN_RECV {lst.syn_recv}"
    return f"{where} {owner}{queue}"


def _table(values: dict[str, Any], unit: str = "") -> str:
    return "\n".join(f"{k:<24} {v}{unit}" for k, v in values.items())


def _syn_alert(view: AlertView, event: SynFloodEvent) -> Message:
    host = event.host or "unknown host"
    title = f"🌊 SYN flood on {host}, port {event.port}"
    if view.repeat_count > 1:
        title += f" ×{view.repeat_count}"
    did = (
        "is answering with SYN cookies"
        if event.action == "cookies"
        else "is *dropping* connection requests (net.ipv4.tcp_syncookies=0)"
    )
    summary = f"The kernel on *{mrkdwn(host)}* {did} for {_listener_text(event)}."
    pairs = [
        ("Host", mrkdwn(host)),
        ("When", mrkdwn(event.time or "unknown")),
        ("Episode", _episode_text(event)),
    ]
    verdict = event.context.get("verdict_text") or event.context.get("verdict")
    if verdict:
        pairs.append(("Verdict", describe(verdict)))
    blocks: list[Block] = [bk.header(plain(title)), bk.section(summary), *bk.fields(pairs)]
    tables = [("Peak rates", "peak_rates", "/s"), ("Sysctls", "sysctls", "")]
    if event.episode != "ended":
        tables.insert(0, ("Counters now", "counter_rates", "/s"))
    for label, key, unit in tables:
        values = event.context.get(key)
        if isinstance(values, dict) and values:
            head = f"*{label}*\n"
            text = code_block(_table(values, unit), bk.SECTION_MAX - len(head))
            blocks.append(bk.section(head + text))
    blocks += advice_blocks(event.advice)
    notes = [f"proto {mrkdwn(event.proto)}" if event.proto else "", event.family]
    if view.silenced_until:
        notes.append(f"silenced until {mrkdwn(view.silenced_until)}")
    if event.id:
        notes.append(f"id {mrkdwn(event.id)}")
    blocks += [bk.context(notes), _silence_buttons(view)]
    return bk.message(f"SYN flood on {mrkdwn(host)}, port {event.port}", blocks)


def _episode_text(event: SynFloodEvent) -> str:
    text = mrkdwn(event.episode or "seen once in the log")
    extra = event.context.get("episode")
    if extra:
        text += f" ({describe(extra)})"
    started = event.context.get("started")
    if started:
        text += f", started {describe(started)}"
    duration = event.context.get("duration_s")
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        text += (
            f", lasted {int(duration)} s"
            if event.episode == "ended"
            else f", {int(duration)} s so far"
        )
    return text


def render_alert(view: AlertView) -> Message:
    event = view.event
    if isinstance(event, OomKillEvent):
        return _oom_alert(view, event)
    return _syn_alert(view, event)


def render_thread_reply(view: AlertView) -> Message:
    """A repeat of an alert, posted in its thread: one line plus the count."""
    event = view.event
    if isinstance(event, OomKillEvent):
        v = event.victim
        line = f"Again at {mrkdwn(event.time or '?')}: `{mrkdwn(v.comm or '?')}` pid {v.pid} killed"
        line += f" ({_oom_where(event)})"
    else:
        line = (
            f"Again at {mrkdwn(event.time or '?')}: SYN flood on port {event.port}, "
            f"{mrkdwn(event.episode or event.action)}"
        )
    line += f" — {view.repeat_count} in this group"
    return bk.message(line, [bk.section(line)])


_NOTICE_ICONS = {
    "agent_stale": "🔇",
    "agent_back": "✅",
    "fleet_burst": "🚨",
    "digest": "🗞",
    "info": "ℹ",
}


def render_notice(n: Notice) -> Message:
    blocks: list[Block] = [bk.header(plain(f"{_NOTICE_ICONS[n.kind]} {n.title}"))]
    if n.lines:
        body = "\n".join(f"• {mrkdwn(line)}" for line in n.lines)
        blocks.append(bk.section(body))
    if n.hosts:
        shown = ", ".join(f"`{mrkdwn(h)}`" for h in n.hosts[:40])
        more = f" and {len(n.hosts) - 40} more" if len(n.hosts) > 40 else ""
        blocks.append(bk.context([f"hosts: {shown}{more}"]))
    return bk.message(mrkdwn(n.title), blocks)
