"""Our own log lines stay one bounded line whatever a host sends (issue 8: escaped, bounded logs).

A comm, host name, kernel line or URL can carry a newline (a forged second log entry), an ANSI
escape (a repainted terminal), a Unicode line separator or a megabyte of text.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from kernbot.logsafe import LIMIT, logsafe
from kernbot.logsetup import MESSAGE_LIMIT, OneLineFormatter


def test_control_characters_become_visible_escapes() -> None:
    assert logsafe("a\nb") == "a\\x0ab"
    assert logsafe("\x1b[2Jcleared") == "\\x1b[2Jcleared"
    assert logsafe("x\u2028y\u2029z") == "x\\u2028y\\u2029z"
    assert logsafe("del\x7f c1\x9b") == "del\\x7f c1\\x9b"
    assert logsafe("tab\there\r") == "tab\\x09here\\x0d"


def test_a_backslash_is_doubled_so_an_escape_cannot_be_forged() -> None:
    # A host that sends the four characters `\x0a` must not look like one that sent a newline.
    assert logsafe("\\x0a") == "\\\\x0a"
    assert logsafe("\n") != logsafe("\\x0a")


def test_ordinary_text_is_unchanged_and_identifiers_stay_copyable() -> None:
    for text in ("kubepods-burstable-pod1234.slice", "<!channel>", "наш-хост", "node_exporter"):
        assert logsafe(text) == text


def test_long_values_are_cut_with_a_mark() -> None:
    out = logsafe("x" * 1_000_000)
    assert len(out) == LIMIT and out.endswith("…")
    assert logsafe("y" * 50, limit=10) == "y" * 9 + "…"
    # escapes count toward the limit: the result is bounded, not the input
    assert len(logsafe("\n" * 1000, limit=40)) == 40


@given(st.text(max_size=2000), st.integers(min_value=2, max_value=500))
def test_always_one_line_within_the_limit(text: str, limit: int) -> None:
    out = logsafe(text, limit)
    assert len(out) <= limit
    assert out.splitlines() == [out] or out == ""
    assert not any(ch in out for ch in "\x1b\r\n\u2028\u2029\x85")


def _formatted(message: str, *args: object, exc: bool = False) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("kernbot.test.logsafe")
    log.propagate = False
    log.handlers = [handler]
    try:
        if exc:
            try:
                raise ValueError("ours")
            except ValueError:
                log.exception(message, *args)
        else:
            log.warning(message, *args)
    finally:
        log.handlers = []
    return stream.getvalue()


def test_the_formatter_keeps_a_hostile_argument_on_one_line() -> None:
    host = "node-1\n2026-12-06 12:00:00,000 INFO kernbot.bot: all clear\x1b[2J"
    out = _formatted("heartbeat for %s refused", host)
    assert out.count("\n") == 1, out  # the handler's own terminator only
    assert "\\x0a2026-12-06" in out and "\\x1b[2J" in out


def test_the_formatter_bounds_the_message() -> None:
    out = _formatted("comm %s", "A" * 100_000)
    assert len(out) < MESSAGE_LIMIT + 100
    assert "…" in out


def test_our_traceback_still_follows_on_its_own_lines() -> None:
    out = _formatted("failed for %s", "bad\nname", exc=True)
    first, *rest = out.splitlines()
    assert first == "ERROR kernbot.test.logsafe: failed for bad\\x0aname"
    assert rest[0].startswith("Traceback") and rest[-1] == "ValueError: ours"


def test_a_real_scan_names_a_hostile_file_name_on_one_line() -> None:
    """A real `kernbot scan` of a file whose name holds a newline and a terminal escape (a
    glob over a directory someone else writes to): its error names it escaped, on one line."""
    hostile = "/nonexistent\n2026-12-06 FAKE ENTRY\x1b[31m"
    proc = subprocess.run(
        [sys.executable, "-m", "kernbot", "scan", hostile],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "FAKE ENTRY" in proc.stderr, proc.stderr
    for line in proc.stderr.splitlines():
        assert not line.startswith("2026-12-06 FAKE"), proc.stderr
    assert "\x1b" not in proc.stderr, proc.stderr
