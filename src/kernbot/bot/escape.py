"""Make hostile kernel text inert in Slack.

A process can name itself `<!channel>` or `*PAGE ME*`; a pod can be called anything a user typed.
Slack parses `<...>` as mentions and links, `&` as an entity, and `*`, `_`, `~` and backticks as
formatting, and has no backslash escape. So every value that came from a host is passed through
one of these functions before it is put in a message:

- `mrkdwn()` for mrkdwn text: `&`, `<`, `>` become entities (Slack's documented escaping) and the
  four formatting characters become look-alikes, so nothing can bold, strike, mention or link.
- `inline_code()` for a host value inside a sentence: a code span, where formatting is inert.
- `text()` for our own words: entities only.
- `plain()` for plain_text objects (headers, buttons): entities too, no formatting to neutralise.
- `code()` for the inside of a ``` block: formatting is inert there, only entities and backticks
  (which could close the block early) need care, so commands stay copy-pasteable.

Control characters (terminal escapes, newlines in a comm) are shown as `\\xNN`, as the kernel does.
`truncate()` shortens escaped text without cutting an entity in half.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_LOOKALIKES = {
    "*": "\u2217",  # ∗ asterisk operator
    "_": "\u02cd",  # ˍ modifier letter low macron
    "~": "\u223c",  # ∼ tilde operator
    "`": "\u02cb",  # ˋ modifier letter grave accent
}
_ENTITY_RE = re.compile(r"&(?:amp|lt|gt);")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NEWLINE_RE = re.compile(r"[\t\n]")


def _controls(text: str, *, keep_newlines: bool) -> str:
    text = _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    if not keep_newlines:
        text = _NEWLINE_RE.sub(" ", text)
    return text


def _entities(text: str) -> str:
    return "".join(_ENTITIES.get(c, c) for c in text)


_WORD_UNDERSCORE_RE = re.compile(r"(?<=[0-9A-Za-z])_(?=[0-9A-Za-z])")
_KEPT = "\x00"


def mrkdwn(value: object, *, multiline: bool = False) -> str:
    """`value` as inert mrkdwn: shows literally, cannot format, mention or link.

    An `_` between two letters or digits stays (`node_exporter`, `pod94eb36cd_29e1`): Slack
    italicises only from a word boundary, and a look-alike there would break copy and search.
    """
    text = _controls(str(value), keep_newlines=multiline)
    text = _WORD_UNDERSCORE_RE.sub(_KEPT, text)
    out = "".join(_ENTITIES.get(c) or _LOOKALIKES.get(c) or c for c in text)
    return out.replace(_KEPT, "_")


def text(value: object) -> str:
    """Our own words for mrkdwn: entities escaped, one line; no look-alikes (we wrote them)."""
    return _entities(_controls(str(value), keep_newlines=False))


def inline_code(value: object) -> str:
    """`value` as an inline code span: Slack formats nothing inside, so only what could break out
    is neutralised (a backtick ends the span; `&`, `<`, `>` as entities). `_`, `*` and `~` stay,
    so the identifier can be copied and searched as it is. Empty for an empty value."""
    raw = _controls(str(value), keep_newlines=False)
    if not raw.strip():
        return ""
    return "`" + _entities(raw).replace("`", _LOOKALIKES["`"]) + "`"


def plain(value: object) -> str:
    """`value` for a plain_text object: one line, entities escaped."""
    return _entities(_controls(str(value), keep_newlines=False))


def code(value: object) -> str:
    """`value` for the inside of a ``` block (several lines allowed)."""
    text = _controls(str(value), keep_newlines=True).replace("\t", "    ")
    return _entities(text).replace("`", _LOOKALIKES["`"])


def code_block(value: object, limit: int) -> str:
    """A whole ``` block of at most `limit` characters; the fences always survive truncation."""
    return "```" + truncate(code(value), limit - 6) + "```"


def truncate(text: str, limit: int, marker: str = ELLIPSIS) -> str:
    """Cut escaped text to at most `limit` characters, never inside `&amp;`/`&lt;`/`&gt;`."""
    if len(text) <= limit:
        return text
    cut = max(limit - len(marker), 0)
    for m in _ENTITY_RE.finditer(text, max(cut - 4, 0), cut + 4):
        if m.start() < cut < m.end():
            cut = m.start()
            break
    return text[:cut] + marker[: max(limit - cut, 0)]


def unescape(text: str) -> str:
    """Undo `mrkdwn()`/`plain()` for a terminal: entities and look-alikes back to ASCII."""
    for char, lookalike in _LOOKALIKES.items():
        text = text.replace(lookalike, char)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
