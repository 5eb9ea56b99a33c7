"""Block Kit builders that cannot produce a block Slack would reject.

Every builder takes text that is ALREADY escaped (see `escape`) and truncates it to Slack's limits
after escaping, so a long hostile value shortens the message instead of making chat.postMessage
fail with `invalid_blocks`. slack_sdk's models validate the result once more in `to_dict()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from kernbot.bot import escape
from kernbot.bot.ports import Message
from kernbot.core.alert import AlertDocument

HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
FIELDS_PER_SECTION = 10
CONTEXT_ELEMENTS_MAX = 10
BUTTON_TEXT_MAX = 75
ACTION_ID_MAX = 255
BUTTON_VALUE_MAX = 2000
BLOCKS_MAX = 50
FALLBACK_MAX = 3000
"""chat.postMessage accepts 40,000 characters of `text`; a notification needs far fewer."""


def _md(text: str, limit: int) -> MarkdownTextObject:
    return MarkdownTextObject(text=escape.truncate(text, limit) or " ", verbatim=True)


def header(text: str) -> HeaderBlock:
    """`text` is plain-escaped (`escape.plain`)."""
    return HeaderBlock(text=PlainTextObject(text=escape.truncate(text, HEADER_MAX) or " "))


def section(text: str) -> SectionBlock:
    return SectionBlock(text=_md(text, SECTION_MAX))


def fields(pairs: Sequence[tuple[str, str]]) -> list[Block]:
    """Label/value pairs as two-column fields, ten per section. Labels are ours; values escaped."""
    items = [_md(f"*{label}*\n{value}", FIELD_MAX) for label, value in pairs if value]
    return [
        SectionBlock(fields=items[i : i + FIELDS_PER_SECTION])
        for i in range(0, len(items), FIELDS_PER_SECTION)
    ]


def context(parts: Sequence[str]) -> ContextBlock:
    kept = [p for p in parts if p][:CONTEXT_ELEMENTS_MAX] or [" "]
    return ContextBlock(elements=[_md(p, SECTION_MAX) for p in kept])


def button(text: str, action_id: str, value: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(
        text=PlainTextObject(text=escape.truncate(escape.plain(text), BUTTON_TEXT_MAX)),
        action_id=action_id[:ACTION_ID_MAX],
        value=value[:BUTTON_VALUE_MAX],
        style=style,
    )


def actions(buttons: Sequence[ButtonElement], block_id: str | None = None) -> ActionsBlock:
    return ActionsBlock(elements=list(buttons)[:25], block_id=block_id)


def divider() -> DividerBlock:
    return DividerBlock()


def message(
    fallback: str, blocks: Sequence[Block], document: AlertDocument | None = None
) -> Message:
    """Assemble a Message: at most 50 blocks; a note says how many were left out, and trailing
    buttons (Silence) are kept."""
    kept = list(blocks)
    if len(kept) > BLOCKS_MAX:
        tail = [kept.pop()] if isinstance(kept[-1], ActionsBlock) else []
        room = BLOCKS_MAX - 1 - len(tail)
        note = context([f"…{len(kept) - room} more blocks not shown"])
        kept = [*kept[:room], note, *tail]
    dicts: list[dict[str, Any]] = [b.to_dict() for b in kept]
    return Message(
        text=escape.truncate(fallback, FALLBACK_MAX) or " ", blocks=dicts, document=document
    )
