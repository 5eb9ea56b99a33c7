"""Alert documents (kernbot.core.alert) and notices as Block Kit messages.

Host values go where Slack's formatting is inert: inline code spans and ``` blocks, where only
what could break out is neutralised (a backtick, and `&`/`<`/`>` as Slack's escaping requires),
so identifiers stay intact and copyable. Our own words are escaped for entities only. `blocks`
enforces Slack's size limits; the plain `text` fallback carries the headline.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from slack_sdk.models.blocks import Block

from kernbot.bot import blocks as bk
from kernbot.bot.escape import code_block, inline_code, mrkdwn, plain, text, truncate
from kernbot.bot.ports import AlertView, Message, Notice
from kernbot.core.alert import (
    SILENCE_ACTIONS,
    AlertDocument,
    BotFacts,
    Line,
    Section,
    Span,
    Table,
    build_alert,
    plain_text,
    t,
    v,
)
from kernbot.core.events import Advice, OomKillEvent, OomRiskEvent
from kernbot.core.units import size

__all__ = ["SILENCE_ACTIONS", "decode_target", "render_alert", "render_notice", "to_message"]

MAX_ADVICE = 6


def human_kb(kb: int | None) -> str:
    """kB in the unit every alert uses (kernbot.core.alert.size); empty when unknown."""
    return size(kb)


def spans(line: Line) -> str:
    """A document line as mrkdwn: values in code spans, our words entity-escaped."""
    out = []
    for s in line:
        if s.kind == "value":
            out.append(inline_code(s.text))
        elif s.kind == "strong":
            out.append(f"*{mrkdwn(s.text)}*")
        elif s.kind == "prose":
            out.append(mrkdwn(s.text))
        elif s.kind == "link" and s.url:
            out.append(f"<{s.url}|{text(s.text)}>")
        else:
            out.append(text(s.text))
    return "".join(out)


def table_text(table: Table) -> str:
    """Fixed-width rows (for a ``` block, escaped by `code`)."""
    rows = [table.header, *table.rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(table.header) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]).rstrip()
        for r in rows
    )


def silence_target(view: AlertView) -> str:
    """What the Silence buttons silence: the pod when known, else the host."""
    event = view.event
    k8s = event.kubernetes if isinstance(event, OomKillEvent | OomRiskEvent) else None
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


def to_message(doc: AlertDocument) -> Message:
    """The document as Block Kit, within every Block Kit limit (see `blocks`)."""
    blocks: list[Block] = [bk.header(plain(doc.title))]
    if doc.why:
        blocks.append(bk.section("\n".join(spans(line) for line in doc.why)))
    if doc.headline:
        blocks.append(bk.section(spans(doc.headline)))
    blocks += bk.fields([(text(f.label), spans(f.value)) for f in doc.facts])
    for sec in doc.sections:
        head = f"*{text(sec.title)}*\n" if sec.title else ""
        body = "\n".join(spans(line) for line in sec.lines)
        if sec.table is not None:
            body += ("\n" if body else "") + code_block(
                table_text(sec.table), bk.SECTION_MAX - len(head) - len(body) - 1
            )
        blocks.append(bk.section(head + body))
    blocks += advice_blocks(doc.advice)
    if doc.notes:
        blocks.append(bk.context([spans(n) for n in doc.notes]))
    if doc.actions:
        blocks.append(
            bk.actions(
                [
                    bk.button(a.label, a.action_id, encode_target(a.value), style=a.style)
                    for a in doc.actions
                ],
                block_id="kernbot_silence",
            )
        )
    # `text` is the notification line, parsed as mrkdwn: host values in it become look-alikes.
    return bk.message(mrkdwn(doc.fallback or doc.title), blocks, document=doc)


def bot_facts(view: AlertView) -> BotFacts:
    return BotFacts(
        repeat_count=view.repeat_count,
        kills_24h_host=view.kills_24h_host,
        kills_24h_pod=view.kills_24h_pod,
        silenced_until=view.silenced_until,
        silence_target=silence_target(view),
        related_channel=view.related.channel if view.related is not None else None,
        related_at=posted_at(view.related.ts) if view.related is not None else None,
        related_link=view.related.permalink if view.related is not None else None,
    )


def posted_at(ts: str) -> str | None:
    """A Slack message ts as `09:15:03 UTC` (to find the message by)."""
    try:
        return datetime.fromtimestamp(float(ts), UTC).strftime("%H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):
        return None


def render_alert(view: AlertView) -> Message:
    if view.event.test:
        return render_test_alert(view.event.host or "?")
    return to_message(build_alert(view.event, bot_facts(view)))


def render_test_alert(host: str) -> Message:
    """`kernbot doctor --test-alert`: proves agent -> bot -> Slack works; nothing was killed."""
    title = f"🧪 TEST alert from {host}: no process was killed"
    headline: Line = [
        t("kernbot doctor --test-alert on "),
        v(host),
        t(
            " sent this through its agent and the bot:"
            " kernel kills on this host reach this channel."
        ),
    ]
    return to_message(
        AlertDocument(kind="test", title=title, headline=headline, fallback=plain_text(headline))
    )


def render_thread_reply(view: AlertView) -> Message:
    """A repeat of an alert, posted in its thread: the headline plus the count."""
    doc = build_alert(view.event)
    when = view.event.time
    line: Line = [t("Again at "), v(when), t(": ")] if when else [t("Again: ")]
    line += [*doc.headline, t(f" — {view.repeat_count} in this group")]
    reply = AlertDocument(kind=doc.kind, title=doc.title, headline=line, fallback=plain_text(line))
    return bk.message(mrkdwn(reply.fallback), [bk.section(spans(line))], document=reply)


_NOTICE_ICONS = {
    "agent_stale": "🔇",
    "agent_back": "✅",
    "fleet_burst": "🚨",
    "digest": "🗞",
    "info": "ℹ",
    "silence": "🔕",
    "unsilence": "🔔",
    "storm": "🌩",
}


def notice_document(n: Notice) -> AlertDocument:
    """A notice (agent silent, burst, digest) as a document: its lines may name hosts."""
    lines: list[Line] = [[Span(text=f"• {line}", kind="prose")] for line in n.lines]
    sections = [Section(title="", lines=lines)] if lines else []
    notes: list[Line] = []
    if n.hosts:
        shown: Line = [t("hosts: ")]
        for i, h in enumerate(n.hosts[:40]):
            shown += [t(", ")] if i else []
            shown.append(v(h))
        if len(n.hosts) > 40:
            shown.append(t(f" and {len(n.hosts) - 40} more"))
        notes.append(shown)
    if n.by:
        notes.append([t("by "), v(n.by)])
    title = f"{_NOTICE_ICONS[n.kind]} {n.title}"
    return AlertDocument(
        kind="notice", title=title, headline=[], sections=sections, notes=notes, fallback=n.title
    )


def render_notice(n: Notice) -> Message:
    return to_message(notice_document(n))
