"""The Slack warning for an `oom_risk` episode: one message, re-rendered as the episode goes.

The headline (kernbot.core.risk.summary) is plain text built from cgroup paths and comms, so it
is escaped here like every other kernel-sourced string.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from slack_sdk.models.blocks import Block

from kernbot.bot import blocks as bk
from kernbot.bot.escape import code_block, mrkdwn, plain
from kernbot.bot.ports import AlertView, Message, PostedRef
from kernbot.core.events import OomRiskEvent
from kernbot.core.risk.summary import duration, headline, who

_STATE = {
    "start": "warning",
    "ongoing": "warning, still at risk",
    "ended": "over: back under the end threshold",
    "killed": "the OOM killer struck",
}


_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


def posted_where(ref: PostedRef | None) -> str:
    """` (posted in #channel at 09:15:03 UTC)` for the other alert of a warning/kill pair: a
    channel mention Slack links, and the time to find it by; empty when it is not posted yet."""
    if ref is None:
        return ""
    channel = f"<#{ref.channel}>" if _CHANNEL_ID.match(ref.channel) else mrkdwn(ref.channel)
    try:
        at = datetime.fromtimestamp(float(ref.ts), UTC).strftime(" at %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):
        at = ""
    return f" (posted in {channel}{at})"


def _kb(kb: int | None) -> str:
    return f"{kb / 1024:.0f} MiB" if kb is not None else "?"


def risk_fields(ev: OomRiskEvent) -> list[tuple[str, str]]:
    pairs = [
        ("Host", mrkdwn(ev.host or "?")),
        ("Cgroup", f"`{mrkdwn(ev.cgroup)}`"),
        (
            "Working set",
            f"{_kb(ev.working_set_kb)} of {_kb(ev.limit_kb)} ({ev.percent or 0:.0f} %)",
        ),
        ("Usage", _kb(ev.usage_kb)),
    ]
    live = ev.state in ("start", "ongoing")  # a trend means nothing once it is over
    if live and ev.growth_kb_per_s is not None:
        pairs.append(("Growth", f"{ev.growth_kb_per_s * 60 / 1024:+.1f} MiB/min"))
    if live and ev.eta_s is not None:
        pairs.append(("Time to limit", duration(ev.eta_s)))
    if ev.psi is not None:
        pairs.append(("Memory PSI", f"some {ev.psi.some_avg10} %, full {ev.psi.full_avg10} %"))
    episode = f"{_STATE[ev.state]}, since {mrkdwn(ev.started or '?')}"
    if ev.ended:
        episode += f", until {mrkdwn(ev.ended)}"
    if ev.peak_percent is not None:
        episode += f", peak {ev.peak_percent:.0f} %"
    pairs.append(("Episode", episode))
    return pairs


def render_risk_alert(
    view: AlertView, ev: OomRiskEvent, advice: list[Block], buttons: Block
) -> Message:
    title = headline(ev)
    blocks: list[Block] = [bk.header(plain(title)), *bk.fields(risk_fields(ev))]
    if ev.state == "killed":
        blocks.append(
            bk.section(
                f"Killed: see the OOM kill alert for `{mrkdwn(ev.kill_id or '?')}`"
                f"{posted_where(view.related)}."
            )
        )
    if ev.top:
        rows = "\n".join(f"{p.pid:>8}  {_kb(p.rss_kb):>9}  {p.comm}" for p in ev.top[:5])
        head = "*Largest processes*\n"
        blocks.append(bk.section(head + code_block(rows, bk.SECTION_MAX - len(head))))
    if ev.state in ("start", "ongoing"):
        blocks += advice
    notes = [f"id {mrkdwn(ev.id or '?')}", f"revision {ev.revision}"]
    if view.silenced_until:
        notes.append(f"silenced until {mrkdwn(view.silenced_until)}")
    blocks.append(bk.context(notes))
    if ev.state in ("start", "ongoing"):
        blocks.append(buttons)
    return bk.message(mrkdwn(f"{title} on {ev.host or '?'} ({who(ev)})"), blocks)
