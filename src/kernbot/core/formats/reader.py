"""Kernel log text in any transport's format → `Record`s, one line of message each.

People paste, grep and concatenate logs, so the format is detected per line, not per file: a
`dmesg -T` excerpt may sit under a kern.log one. The first character picks the few prefix parsers
that could apply (cheap, since `kernbot scan` pushes large files through here); a line no parser
claims is kept whole as fmt `plain`, so nothing is lost. The reader keeps just enough state for the
multi-line cases: dmesg/journalctl indenting a record's embedded lines to the prefix width,
/dev/kmsg dictionary lines and `c`/`+` fragments, syslogd's wall broadcast, and pretty-printed
`dmesg --json`.

Records from other programs (`sshd[12]: …` in /var/log/messages, non-kernel journal entries) come
out with a fmt in `OTHER_FORMATS`; detectors should skip them (`is_kernel`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from kernbot.core.formats.dmesg import (
    CALLER,
    parse_bracket,
    parse_fac_level,
    parse_netconsole,
    parse_raw_prio,
)
from kernbot.core.formats.embedded import embedded_message, json_noise, split_glued
from kernbot.core.formats.head import Head, to_records
from kernbot.core.formats.journal import dmesg_json_head, is_kernel_entry, journal_head, json_member
from kernbot.core.formats.kmsg import DICT_LINE, parse_kmsg_line
from kernbot.core.formats.syslog import (
    parse_iso,
    parse_traditional,
    parse_wall_header,
    parse_wall_kernel,
    unescape_octal,
)
from kernbot.core.record import Record

__all__ = [
    "OTHER_FORMATS",
    "LineReader",
    "is_kernel",
    "parse_journal_entry",
    "parse_kmsg_record",
    "read_lines",
]

OTHER_FORMATS = frozenset({"syslog-other", "journal-other"})
"""Formats of records that did not come from the kernel."""
FORCED_FORMATS = ("auto", "dmesg", "dmesg-r", "dmesg-x", "kmsg", "syslog", "json", "csv", "plain")
"""What `kernbot scan --format NAME` accepts: `auto` detects per line (the default); a name
parses every line with that format's parser only (`json`/`csv`: a log platform's export; `plain`:
bare kernel messages, no prefix at all)."""
_RECOVERABLE = frozenset({"plain", "dmesg-iso"})
"""Formats whose text may still wrap a kernel line (exports, `aws logs tail`, Loki)."""

_MONTH_INITIALS = frozenset("JFMASOND")
_JSON_STRUCTURE = frozenset({"{", "},{", "}", "},", "]", "],", "}]", "]}"})
"""Lines of pretty-printed `dmesg --json` that carry no record."""
_NOT_JSON = Head("", "not-json")
_tuple_new = tuple.__new__
_PLAIN_STAMP = re.compile(r"\[ {0,12}(\d{1,12})\.(\d{6})\] ?")
"""`dmesg`'s own stamp with microseconds: what `parse_bracket` reads the same way."""


def is_kernel(record: Record) -> bool:
    """False for lines another program logged (the detectors' filter)."""
    return record.fmt not in OTHER_FORMATS


class LineReader:
    """Stateful: detects the format PER LINE (mixed/concatenated files work), joins continuations.

    `host`/`boot_id` fill records whose format does not carry them; `year` dates the year-less
    syslog and `dmesg -e` stamps (their `wall` stays None without it).
    """

    def __init__(
        self,
        *,
        host: str | None = None,
        boot_id: str | None = None,
        year: int | None = None,
        fmt: str | None = None,
    ) -> None:
        if fmt not in (None, *FORCED_FORMATS):
            raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORCED_FORMATS)}")
        self.forced = None if fmt == "auto" else fmt
        self.host = host
        self.boot_id = boot_id
        self.year = year
        self._lineno = 0
        self._cont: Head | None = None  # the record that indented lines continue
        self._indent = ""
        self._after_kmsg = False  # dictionary lines (` KEY=value`) may follow
        self._fragment: tuple[Head, int] | None = None  # a kmsg `c` record and its line number
        self._held: tuple[Head, int] | None = None
        self._wall_host: str | None = None
        self._wall_time: datetime | None = None
        self._json_mode = False  # inside pretty-printed `dmesg --json`
        self._json_members: dict[str, object] = {}
        self._cont_meta: tuple[Head, tuple[object, ...]] | None = None
        """`_cont` and the fields its continuation records share (the fast path's cache)."""

    def feed(self, line: str, lineno: int = 0) -> list[Record]:
        """Records for one input line (without its newline); [] for blank or metadata lines."""
        if line[-1:] in ("\n", "\r"):
            line = line.rstrip("\r\n")
        self._lineno = lineno
        if self._fragment is None and self.forced is None and not self._json_mode:
            # The two commonest lines of a big log without the general machinery (written here,
            # not called: `kernbot scan` and the agent read most lines of an OOM loop this way).
            # A plain `dmesg` line (`[   12.345678] msg`: no caller id (a task-table row's
            # `[  pid]` is none), no `host kernel: `, no second record glued on) and a
            # continuation line indented under the record before it give the very records
            # `_parse` and `to_records` would; every other line takes the general path below.
            first = line[:1]
            if first == "[":
                m = _PLAIN_STAMP.match(line)
                if m is not None and "\n" not in line:
                    end = m.end()
                    if not (
                        (line.startswith("[", end) and CALLER.match(line, end))
                        or line.find(" kernel: ", end, end + 260) >= 0
                        or (len(line) > 40 and line.find("[", 14) >= 0 and split_glued(line))
                    ):
                        secs, frac = m.group(1, 2)
                        mono = int(secs) * 1_000_000 + int(frac)
                        text = line[end:]
                        self._after_kmsg = False
                        # tuple.__new__: the NamedTuples' own constructors cost more than the
                        # rest here; no wall, host, caller, seq, boot_id nor cursor (a literal
                        # tuple: faster than `*` of one)
                        self._cont = _tuple_new(
                            Head,
                            (text, "dmesg", end, None, mono, None, None, None, None, None, None),
                        )
                        if len(self._indent) != end:
                            self._indent = " " * end
                        host, boot, fmt = self.host, self.boot_id, "dmesg"
                        rec = (text, None, None, mono, None, host, None, boot, None, fmt, lineno)
                        return [_tuple_new(Record, rec)]
            elif first == " ":
                cont = self._cont
                if cont is not None and line.startswith(self._indent) and "\n" not in line:
                    text = line[cont.width :]
                    if text and not text.isspace() and cont.fmt not in _RECOVERABLE:
                        meta = self._cont_meta
                        if meta is None or meta[0] is not cont:
                            meta = (cont, self._shared(cont))
                            self._cont_meta = meta
                        self._after_kmsg = False
                        return [_tuple_new(Record, (text, *meta[1], lineno))]
        return self._general(line, lineno)

    def _general(self, line: str, lineno: int) -> list[Record]:
        """`feed` of a line its fast path does not read."""
        # A kmsg `c` fragment held from earlier lines: a `+` line below may still extend it.
        self._held, self._fragment = self._fragment, None
        if not line or line.isspace():
            if self._cont is not None and line.startswith(self._indent):
                return self._take_held()  # an empty embedded line of the record: keep going
            self._cont = None
            self._after_kmsg = False
            return self._take_held()
        if line[0] == "[" and len(line) > 40 and (cut := split_glued(line)):
            # Two records pasted onto one line: read them as the two lines they were.
            first = self.feed(line[:cut].rstrip(), lineno)
            return first + self.feed(line[cut:], lineno)
        try:
            head = self._parse(line) if self.forced is None else self._parse_forced(line)
            if head is not None and head.fmt in _RECOVERABLE and self.forced in (None, "json"):
                recovered = self._recover(head)
                if recovered is not None:
                    head = recovered
                elif head.fmt == "plain" and line[:1] in ' \t{}[]"' and json_noise(line):
                    head = None  # an export's JSON around the messages: no record
        except (ValueError, OverflowError, IndexError, KeyError, TypeError, RecursionError):
            head = Head(line, "plain")
        out = self._take_held() if self._held is not None else []
        if head is None:
            return out
        fmt = head.fmt
        if fmt == "plain" and "#01" in line:  # rsyslog escapes, prefix cut off by a human
            head = head._replace(text=unescape_octal(line))
        if head is not self._cont:
            width = head.width
            if width and fmt != "kmsg":
                self._cont = head
                if len(self._indent) != width:
                    self._indent = " " * width
            else:
                self._cont = None
        out.extend(to_records(head, lineno=lineno, host=self.host, boot_id=self.boot_id))
        return out

    def plain_width(self) -> int | None:
        """The width of the prefix that indented lines continue when `feed` would read them on
        its fast path (a plain `dmesg` record before them, no kmsg fragment, no forced format),
        0 when only stamped lines can be (no such record), None when neither can."""
        if self._fragment is not None or self.forced is not None or self._json_mode:
            return None
        cont = self._cont
        if cont is None or cont.fmt != "dmesg" or cont.mono_usec is None:
            return 0
        return cont.width

    def plain_mono(self) -> int | None:
        """The monotonic time of the record indented lines continue (see `plain_width`)."""
        cont = self._cont
        return None if cont is None else cont.mono_usec

    def took_lines(self, lineno: int, last_head: tuple[str, int, int] | None) -> None:
        """The state `feed` leaves after lines its fast path read one record each, without
        feeding them (`kernbot.core.blocks`): `lineno` the last line's number, `last_head` the
        text, prefix width and monotonic time of the last stamped line among them, if any."""
        self._lineno = lineno
        self._after_kmsg = False
        if last_head is not None:
            text, width, mono = last_head
            self._cont = _tuple_new(
                Head, (text, "dmesg", width, None, mono, None, None, None, None, None, None)
            )
            if len(self._indent) != width:
                self._indent = " " * width

    def _shared(self, head: Head) -> tuple[object, ...]:
        """The fields after `text` and before `lineno` of every record `to_records` makes of
        `head` (the reader's own host and boot id where the head carries none)."""
        (_, fmt, _, level, mono_usec, wall, host, caller, seq, boot_id, cursor) = head
        if host is None:
            host = self.host
        if boot_id is None:
            boot_id = self.boot_id
        return (level, seq, mono_usec, wall, host, caller, boot_id, cursor, fmt)

    def flush(self) -> list[Record]:
        """Whatever is still held back (a kmsg `c` fragment); call at end of input."""
        self._held, self._fragment = self._fragment, None
        return self._take_held()

    def _take_held(self) -> list[Record]:
        held = self._held
        if held is None:
            return []
        self._held = None
        return to_records(held[0], lineno=held[1], host=self.host, boot_id=self.boot_id)

    def _recover(self, head: Head, depth: int = 0) -> Head | None:
        """The kernel line inside an export's line (`kernbot.core.formats.embedded`)."""
        inner = embedded_message(head.text)
        if inner is None or not inner.strip() or depth > 2:
            return None
        found = self._parse_message(inner)
        if found.fmt in _RECOVERABLE:
            deeper = self._recover(found, depth + 1)
            if deeper is not None:
                return deeper
            if found.fmt == "plain":
                found = found._replace(fmt="export")
        return found._replace(width=0, wall=found.wall or head.wall)

    def _parse_message(self, text: str) -> Head:
        """One line found inside another, through the stateless prefix parsers."""
        for line in text.split("\n")[:1]:
            first = line[:1]
            found: Head | None = None
            if first == "[":
                found = parse_bracket(line, self.year)
            elif first == "<":
                found = parse_raw_prio(line, self.year)
            elif first in _MONTH_INITIALS:
                found = parse_traditional(line, self.year)
            elif first.isdigit():
                found = parse_iso(line) if line[4:5] == "-" else None
            elif "a" <= first <= "z":
                found = parse_fac_level(line, self.year)
            if found is not None:
                return found
        return Head(text, "plain")

    def _parse_forced(self, line: str) -> Head | None:
        """`--format NAME`: that one parser for every line; what it does not claim is kept."""
        forced = self.forced
        if forced in ("dmesg", "dmesg-r", "dmesg-x", "syslog", "kmsg"):
            if line[:1] in " \t":
                return self._parse_indented(line, after_kmsg=forced == "kmsg")
            if forced == "dmesg":
                return parse_bracket(line, self.year) or Head(line, "plain")
            if forced == "dmesg-r":
                return parse_raw_prio(line, self.year) or Head(line, "plain")
            if forced == "dmesg-x":
                return parse_fac_level(line, self.year) or Head(line, "plain")
            if forced == "kmsg":
                return self._parse_digit(line)
            return parse_traditional(line, self.year) or parse_iso(line) or Head(line, "plain")
        if forced in ("json", "csv"):
            wrapped = Head(line, "plain")
            return self._recover(wrapped) or wrapped
        return Head(line, "plain")

    def _parse(self, line: str) -> Head | None:
        after_kmsg, self._after_kmsg = self._after_kmsg, False
        if self._json_mode:
            member = self._parse_json_member(line)
            if member is not _NOT_JSON:
                return member
        first = line[0]
        if first == "[":
            return parse_bracket(line, self.year) or Head(line, "plain")
        if first in " \t":
            return self._parse_indented(line, after_kmsg)
        if first.isdigit():
            return self._parse_digit(line)
        if first in _MONTH_INITIALS:
            head = parse_traditional(line, self.year)
            if head is not None:
                return head
            if first == "M" and line.startswith("Message from syslogd@"):
                found = parse_wall_header(line, self.year)
                if found is not None:
                    head, self._wall_host, self._wall_time = found
                    return head
            return Head(line, "plain")
        if first == "<":
            return parse_raw_prio(line, self.year) or Head(line, "plain")
        if first == "{":
            return self._parse_json_line(line)
        if "a" <= first <= "z":
            return parse_fac_level(line, self.year) or Head(line, "plain")
        return Head(line, "plain")

    def _parse_indented(self, line: str, after_kmsg: bool) -> Head | None:
        cont = self._cont
        if cont is not None and (
            line.startswith(self._indent)
            or (cont.fmt == "dmesg-x" and line.startswith(self._indent[1:]))
        ):
            # dmesg indents a record's embedded lines to its prefix width, except `dmesg -x`
            # with `[ts]`: one column short (util-linux quirk). Blanks past the indent are text
            # (show_mem's ` active_file:…`).
            width = cont.width if line.startswith(self._indent) else cont.width - 1
            return cont._replace(text=line[width:])
        if after_kmsg and DICT_LINE.match(line):
            self._after_kmsg = True
            self._fragment, self._held = self._held, None  # still open for `+` pieces
            return None
        stripped = line.lstrip(" \t")
        if stripped.startswith("kernel:"):
            head = parse_wall_kernel(line, self._wall_host, self._wall_time)
            if head is not None:
                return head
        elif stripped.startswith('"dmesg"') and stripped.rstrip().endswith("["):
            self._json_mode = True
            return None
        return Head(line, "plain")

    def _parse_digit(self, line: str) -> Head | None:
        found = parse_kmsg_line(line)
        if found is not None:
            head, flags = found
            self._after_kmsg = True
            held = self._held
            if flags == "+" and held is not None:
                self._held = None
                self._fragment = (held[0]._replace(text=held[0].text + head.text), held[1])
                return None
            if flags == "c":
                self._fragment = (head, self._lineno)
                return None
            return head
        if line[4:5] == "-":
            dated = parse_iso(line) or parse_netconsole(line, self.year)
            if dated is not None:
                return dated
        return Head(line, "plain")

    def _parse_json_line(self, line: str) -> Head | None:
        if line.rstrip() == "{":  # may open pretty-printed `dmesg --json`
            return None
        try:
            obj = json.loads(line)
        except ValueError:
            return Head(line, "plain")
        if not isinstance(obj, dict):
            return Head(line, "plain")
        if "MESSAGE" in obj or "__CURSOR" in obj:
            return journal_head(obj)
        records = obj.get("dmesg")
        if isinstance(records, list):  # `dmesg --json | jq -c .`: the whole log on one line
            found = (dmesg_json_head(r) for r in records if isinstance(r, dict))
            heads = [h for h in found if h is not None]
            if not heads:
                return None
            return heads[0]._replace(text="\n".join(h.text for h in heads))
        return dmesg_json_head(obj) or Head(line, "plain")

    def _parse_json_member(self, line: str) -> Head | None:
        """One line of pretty-printed `dmesg --json`; leaves json mode on anything else."""
        if line.strip() in _JSON_STRUCTURE:
            return None
        member = json_member(line)
        if member is None:
            self._json_mode = False
            self._json_members = {}
            return _NOT_JSON
        key, value = member
        self._json_members[key] = value
        if key != "msg":
            return None
        members, self._json_members = self._json_members, {}
        return dmesg_json_head(members) or Head(line, "plain")


def read_lines(
    lines: Iterable[str],
    *,
    host: str | None = None,
    boot_id: str | None = None,
    year: int | None = None,
    fmt: str | None = None,
) -> Iterator[Record]:
    """Records for an iterable of lines (trailing newlines are fine); numbers lines from 1."""
    reader = LineReader(host=host, boot_id=boot_id, year=year, fmt=fmt)
    for lineno, line in enumerate(lines, start=1):
        yield from reader.feed(line, lineno)
    yield from reader.flush()


def parse_kmsg_record(raw: str, boot_id: str | None = None) -> list[Record]:
    """ONE read() of /dev/kmsg: `PRI,SEQ,TS,FLAGS[,caller=..];MSG\\n KEY=val\\n...`.

    Dictionary lines are dropped; `\\x0a` in the message splits it into several records.
    """
    line = raw.partition("\n")[0]
    found = parse_kmsg_line(line)
    head = found[0] if found is not None else Head(line, "plain")
    return to_records(head, boot_id=boot_id)


def parse_journal_entry(entry: Mapping[str, object]) -> list[Record]:
    """One `journalctl -o json` object; [] unless it is a kernel entry (`_TRANSPORT=kernel`)."""
    if not is_kernel_entry(entry):
        return []
    return to_records(journal_head(entry))
