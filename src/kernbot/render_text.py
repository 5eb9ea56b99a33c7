"""Events as text for a terminal: `kernbot scan` output and `kernbot up`'s console alerts.

Alerts are `kernbot.core.alert` documents, the same ones Slack renders. Kernel text is hostile:
a process can name itself with an escape sequence that clears the
screen or retitles the terminal. Every string that came from the log goes through
`escape_terminal` before it is printed, so control characters show as `\\x1b`, not act.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from kernbot.core.alert import AlertDocument, Span, Table, build_alert
from kernbot.core.events import Advice, Event, OomKillEvent, SynFloodEvent

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]")

_MARK = {"critical": "!!", "warning": "! ", "info": "- "}


def _esc_char(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_terminal(text: object) -> str:
    """`text` with control, bidi and line-breaking characters shown as `\\xNN` / `\\uNNNN`."""
    return _UNSAFE.sub(_esc_char, str(text))


def spans_text(line: Sequence[Span]) -> str:
    """A document line for a terminal: every character escaped, no markup."""
    return "".join(
        escape_terminal(f"{s.text} ({s.url})" if s.kind == "link" and s.url else s.text)
        for s in line
    )


def _table_lines(table: Table) -> list[str]:
    rows = [table.header, *table.rows]
    cells = [[escape_terminal(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(table.header) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]).rstrip()
        for r in cells
    ]


def render_document(doc: AlertDocument) -> str:
    """An alert document as terminal text: the same facts and words as its Slack message."""
    lines = [escape_terminal(doc.title)]
    lines += [spans_text(line) for line in doc.why]
    if doc.headline:
        lines.append(spans_text(doc.headline))
    width = max((len(f.label) for f in doc.facts), default=0) + 2
    lines += [f"  {(f.label + ':').ljust(width)}{spans_text(f.value)}" for f in doc.facts]
    for sec in doc.sections:
        if sec.title:
            lines.append(f"  {escape_terminal(sec.title)}")
        lines += [f"    {spans_text(x)}" for x in sec.lines]
        if sec.table is not None:
            lines += [f"    {row}" for row in _table_lines(sec.table)]
    lines.extend(_advice_lines(doc.advice))
    if doc.notes:
        lines.append("  " + " · ".join(spans_text(n) for n in doc.notes))
    return "\n".join(lines)


def render_event(ev: Event) -> str:
    """One readable block (several lines, no trailing newline) for one event."""
    return render_document(build_alert(ev))


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
