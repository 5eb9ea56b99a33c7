"""A kernel line inside a log platform's export: find the message behind a prefix we do not know.

People hand `kernbot scan` what their log platform gave them, not a kern.log. Each wraps the
kernel's line in its own way (see tests/fixtures/exports/PROVENANCE.md for where each is
documented):

* Kibana/Elasticsearch CSV reports and Datadog/Splunk CSV exports: one CSV row per entry, the
  message in a (quoted, `""`-escaped) column;
* CloudWatch Logs `filter-log-events` JSON (`"message": "…"`), GCP `gcloud logging read
  --format=json` (`"textPayload": "…"`), Splunk JSON (`"_raw": "…"`), Loki `logcli -o jsonl`
  (`"line": "…"`): a JSON string member, pretty-printed or one object per line;
* Loki `logcli` default output (`TIME {labels} line`) and `aws logs tail` (`TIME STREAM line`):
  a prefix before the line as the host wrote it (often syslog: `… kernel: [ts] msg`).

So a line no prefix parser claims (or claims only as a bare date) is searched, in this order,
for a JSON string member with a message key, a CSV row, `kernel: `, or a dmesg `[ts] ` stamp;
the text found is parsed again as a line of its own. Nothing here is needed for kernel text that
arrives whole, so the usual formats never pay for it.
"""

from __future__ import annotations

import csv
import json
import re

MESSAGE_KEYS = ("message", "textPayload", "_raw", "line", "log", "msg", "MESSAGE", "Message")
_MEMBER = re.compile(
    r'"(?:' + "|".join(MESSAGE_KEYS) + r')"\s*:\s*"((?:[^"\\]|\\.)*)"',
)
STAMP = re.compile(r"\[ {0,12}\d{1,12}\.\d{1,9}\] ")
"""dmesg's `[seconds.fraction] ` monotonic stamp."""
GLUED = re.compile(r"\[ {0,12}\d{1,12}\.\d{6}\] ")
"""A second record's stamp inside a line: two kernel lines pasted as one."""
_LOKI_LABELS = re.compile(r'\{(?:[A-Za-z_][\w.]*="(?:[^"\\]|\\.)*"(?:, ?)?)*\}\s+')


def json_message(text: str) -> str | None:
    """The value of the first message-like JSON string member in `text`, unescaped."""
    if '"' not in text:
        return None
    found = _MEMBER.search(text)
    if found is None:
        return None
    try:
        value = json.loads('"' + found[1] + '"')
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def csv_message(text: str) -> str | None:
    """The message column of one CSV row: the field holding kernel-looking text, else the
    longest field (exports put the message last or widest, never the date)."""
    if "," not in text or '"' not in text:
        return None
    try:
        row = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        return None
    if len(row) < 3:  # an export has a time, a source and the message; `"key": 1,` has not
        return None
    for field in reversed(row):
        if "kernel: " in field or STAMP.search(field):
            return field
    return max(row, key=len)


_CSV_DATE = re.compile(r"\d{4}-\d\d-\d\d[T ]?[\d:.]*(?:Z|[+-]\d\d:?\d\d)?,")


def _csv_like(text: str) -> bool:
    """A CSV row as exports write them: a quoted first field, or a bare date first (what is
    left after a date prefix starts with the separator)."""
    return text[:1] in ('"', ",") or _CSV_DATE.match(text) is not None


def embedded_message(text: str) -> str | None:
    """The kernel line wrapped in an export's `text`, or None when nothing wraps one.

    JSON and CSV are only tried on text that starts like them, so a bare kernel line whose
    comm holds a quote or a comma is never taken apart.
    """
    body = text.lstrip()
    labels = _LOKI_LABELS.match(body)
    if labels is not None:
        return body[labels.end() :]
    if body[:1] in ('"', "{"):
        found = json_message(body)
        if found is not None:
            return found
    if _csv_like(body):
        found = csv_message(body)
        if found is not None:
            return found
    at = text.find("kernel: ")
    if at >= 0:
        return text[at + len("kernel: ") :]
    stamp = STAMP.search(text)
    if stamp is not None and stamp.start() > 0:
        return text[stamp.start() :]
    return None


def split_glued(line: str) -> int:
    """Where a second dmesg record starts inside `line` (a paste lost the newline), or 0."""
    found = GLUED.search(line, 14)
    return found.start() if found is not None else 0


_JSON_NOISE = re.compile(
    r'\s*(?:[\[\]{},]+|"[\w@.\-]{1,64}"\s*:\s*(?:[\[{]|[^"\s][^"]*|"[^"]*",?)'
    r"|(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|null|true|false),?)\s*"
)
"""Punctuation, a `"key": value` member, or a bare scalar array element (Elasticsearch's
per-hit `"sort": [1796032800014]` in a pretty-printed response)."""


def json_noise(line: str) -> bool:
    """A line of a pretty-printed JSON export that carries no message (`},`, `"timestamp": …`):
    not kernel text, so it is dropped instead of being kept in a report's lines."""
    return _JSON_NOISE.fullmatch(line) is not None
