"""The idempotency key every detector puts on its events.

The agent posts an event more than once (revisions, retries) and `kernbot scan` may be run on the
same log again, so an event's id must depend only on where its first line sits in the log.
"""

from __future__ import annotations

import hashlib

from kernbot.core.record import Record


def stable_event_id(first: Record, host: str | None, boot_id: str | None) -> str:
    """`boot_id:seq` of the event's first record, else a hash that is the same on every rescan.

    The hash covers host, the first record's time (monotonic, else wall) and its text. Without
    any time (grep output, year-less syslog) the line number stands in, so two events that start
    with the same text in one input get two ids, and the same input always gets the same ids.
    Lone surrogates (from `\\ud800` escapes in journal JSON) are hashed, not refused.
    """
    if boot_id and first.seq is not None:
        return f"{boot_id}:{first.seq}"
    when = str(first.mono_usec) if first.mono_usec is not None else ""
    if not when and first.wall is not None:
        when = first.wall.isoformat()
    if not when and first.lineno:
        when = f"line {first.lineno}"
    key = f"{host or ''}\x00{when}\x00{first.text}"
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
