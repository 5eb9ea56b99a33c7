"""All detectors behind one `feed(record) -> events` call, with advice attached.

`kernbot scan`, the agent and the tests all run records through a `Detector`: it hands every
record to the OOM report assembler (which needs the lines between header and kill line), tries
the SYN flood parser only on lines that contain its marker, and joins a SYN line that a mailer
wrapped after `port`. Events come out as soon as they are known; the OOM assembler may emit
the same event again with a higher `revision` as more of its report arrives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from kernbot.core.advice import advise
from kernbot.core.events import Event
from kernbot.core.formats.reader import OTHER_FORMATS
from kernbot.core.oom.report import OomAssembler
from kernbot.core.record import Record
from kernbot.core.syn.flood import MARKER, is_wrapped_head, parse_syn_flood


class Detector:
    """Routes records to the OOM assembler and the SYN parser; attaches advice to each event."""

    def __init__(self, host: str | None = None, boot_id: str | None = None) -> None:
        self.host = host
        self.boot_id = boot_id
        self._oom = OomAssembler(host=host, boot_id=boot_id)
        self._syn_head: Record | None = None

    @property
    def pending(self) -> bool:
        """True while a report or a wrapped line is half read: every next line may matter.

        Besides the assembler's own `pending`, a report that was emitted early but never saw
        its kill line (a headerless fragment) is still open and absorbs the following lines
        until a gap or a run of unrelated lines closes it (`OomAssembler.absorbing`); skipping
        lines then would change the result, so that counts as pending too.
        """
        return self._syn_head is not None or self._oom.pending or self._oom.absorbing

    def live_ids(self) -> set[str]:
        """Ids of events that a later record may still revise (the open and recent reports)."""
        return self._oom.live_ids()

    def feed(self, rec: Record) -> list[Event]:
        if rec.fmt in OTHER_FORMATS:  # sshd & co. in /var/log/messages: not kernel text
            return []
        out: list[Event] = []
        head = self._syn_head
        if head is not None:
            self._syn_head = None
            joined = replace(head, text=head.text.rstrip() + " " + rec.text.strip())
            ev = parse_syn_flood(joined, host=self.host, boot_id=self.boot_id)
            if ev is not None:
                ev.lines = [head.text, rec.text]
                out.append(ev)
        if MARKER in rec.text:
            syn = parse_syn_flood(rec, host=self.host, boot_id=self.boot_id)
            if syn is not None:
                out.append(syn)
            elif is_wrapped_head(rec.text):
                self._syn_head = rec
        found = self._oom.feed(rec)
        if found:
            out.extend(found)
        return self._advised(out) if out else out

    def flush(self) -> list[Event]:
        """Emit what is still pending (a truncated OOM report); a lone wrapped head is dropped."""
        self._syn_head = None
        return self._advised(list(self._oom.flush()))

    @staticmethod
    def _advised(events: list[Event]) -> list[Event]:
        for ev in events:
            ev.advice = advise(ev)
        return events


class FinalRevisions:
    """Collects emitted events and keeps the last revision of each, in order of first appearance.

    Revision 0 always starts a new event. When two different reports get the same id (a format
    with neither sequence numbers nor precise times, such as year-less syslog), the second is
    kept as its own event instead of overwriting the first; later revisions update the newest.
    """

    def __init__(self) -> None:
        self._events: dict[str, Event] = {}
        self._current: dict[str, str] = {}

    def add(self, events: Iterable[Event]) -> None:
        for ev in events:
            key = ev.id or f"anon:{len(self._events)}:{ev.kind}"
            if ev.revision == 0 or key not in self._current:
                slot = key if key not in self._events else f"{key}#{len(self._events)}"
                self._current[key] = slot
                self._events[slot] = ev
                continue
            slot = self._current[key]
            if ev.revision >= self._events[slot].revision:
                self._events[slot] = ev

    def events(self) -> list[Event]:
        return list(self._events.values())


def detect(
    records: Iterable[Record], *, host: str | None = None, boot_id: str | None = None
) -> list[Event]:
    """The final revision of every event in `records`, in order of first appearance."""
    det = Detector(host=host, boot_id=boot_id)
    final = FinalRevisions()
    for rec in records:
        final.add(det.feed(rec))
    final.add(det.flush())
    return final.events()
