"""Escaping hostile kernel text for Slack: entities, formatting, controls, safe truncation."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernbot.bot import escape

HOSTILE = [
    "<!channel>",
    "<@U123>",
    "<!here>",
    "*bold*",
    "_it_",
    "~gone~",
    "`rm -rf /`",
    "&amp;",
    "a b/c",
    "runc:[2:INIT]",
    "<https://evil.example|click>",
    "\x1b[31mred",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_mrkdwn_leaves_no_markup(value: str) -> None:
    out = escape.mrkdwn(value)
    assert not re.search(r"[<>*~`\x00-\x1f]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])", out), out
    assert re.sub(r"&(amp|lt|gt);", "", out).count("&") == 0
    assert escape.unescape(out) == value.replace("\x1b", "\\x1b")


def test_mrkdwn_examples() -> None:
    assert escape.mrkdwn("<!channel>") == "&lt;!channel&gt;"
    assert escape.mrkdwn("&amp;") == "&amp;amp;"
    assert escape.mrkdwn("*x*") == "\u2217x\u2217"
    assert escape.mrkdwn("a\nb") == "a b"
    # inside a word `_` cannot format, so identifiers stay copyable; at an edge it could
    assert escape.mrkdwn("node_exporter pod94eb36cd_29e1") == "node_exporter pod94eb36cd_29e1"
    assert escape.mrkdwn("_it_ x_") == "\u02cdit\u02cd x\u02cd"
    assert escape.mrkdwn("a\nb", multiline=True) == "a\nb"
    assert escape.plain("<@U123> *x*") == "&lt;@U123&gt; *x*"


def test_code_keeps_commands_copyable_but_cannot_close_the_block() -> None:
    out = escape.code("kubectl -n my_ns get pod *x* && echo ```")
    assert "my_ns" in out and "*x*" in out
    assert "`" not in out and "&amp;&amp;" in out
    block = escape.code_block("x" * 5000, 100)
    assert len(block) == 100 and block.startswith("```") and block.endswith("```")


@pytest.mark.parametrize("limit", range(1, 30))
def test_truncate_never_cuts_an_entity(limit: int) -> None:
    text = escape.mrkdwn("<<&&>>" * 5)
    out = escape.truncate(text, limit)
    assert len(out) <= limit
    body = out.removesuffix(escape.ELLIPSIS)
    assert not re.search(r"&[a-z]*$", body), body


@given(st.text(max_size=300), st.integers(min_value=1, max_value=400))
def test_truncated_escaped_text_is_still_inert(value: str, limit: int) -> None:
    out = escape.truncate(escape.mrkdwn(value), limit)
    assert len(out) <= limit
    # no `_` that could open emphasis: one stays only between two letters or digits
    assert not re.search(r"[<>*~`\x00-\x08\x0b-\x1f]|(?<![0-9A-Za-z])_", out)
    assert not re.search(r"&(?!(amp|lt|gt);)", out.removesuffix(escape.ELLIPSIS))
