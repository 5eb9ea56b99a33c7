"""All detectors behind one `feed(record) -> events` call, with advice attached.

`kernbot scan`, the agent and the tests all run records through a `Detector`: it hands every
record to each registered detector (`DETECTORS`): the OOM report assembler (which needs the lines
between header and kill line) and the SYN flood line parser (which joins a line a mailer wrapped
after `port`). Events come out as soon as they are known; the OOM assembler may emit the same
event again with a higher `revision` as more of its report arrives.

A new kind of event found in the kernel log registers here: a factory for its detector and the
fixed words one of its lines always contains (`keywords`, what `kernbot.core.prefilter` and the
agent search for before parsing anything). See ARCHITECTURE.md, "Adding an event kind".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, cast

from kernbot.core.advice import advise
from kernbot.core.deferred import Deferred
from kernbot.core.events import Event, OomKillEvent
from kernbot.core.formats.reader import OTHER_FORMATS
from kernbot.core.oom.diagnosis import attach_diagnosis
from kernbot.core.oom.lines import PLAIN_WORDS
from kernbot.core.oom.report import OomAssembler
from kernbot.core.record import Record
from kernbot.core.syn.flood import MARKER, is_wrapped_head, parse_syn_flood


class RecordDetector(Protocol):
    @property
    def pending(self) -> bool:
        """True while a record that follows may change what this detector emits."""

    def feed(self, rec: Record) -> list[Event]: ...
    def flush(self) -> list[Event]: ...
    def live_ids(self) -> set[str]:
        """Ids of the events a later record may still revise."""
        ...

    def defer_to(self, sink: list[Event | Deferred]) -> None:
        """Put emitted events in `sink` from now on, built or not (`kernbot.core.deferred`),
        instead of returning them; a detector whose events are cheap may keep returning them."""
        ...

    def takes_plain(self, lo: int, hi: int, n: int) -> bool:
        """Whether `feed_plain` can take `n` records of plain lines (`kernbot.core.blocks`: the
        OOM parser's plain shapes, no `plain_words`) whose monotonic times lie within [lo, hi]."""
        ...

    def feed_plain(self, texts: list[str], last_mono: int) -> None:
        """The effect of `feed` on a record of each of `texts` (none emits an event), the last
        at `last_mono`; only after `takes_plain` said yes."""
        ...


@dataclass(frozen=True, slots=True)
class DetectorKind:
    kind: str
    make: Callable[[str | None, str | None], RecordDetector]
    """(host, boot_id) -> a detector for one stream of records."""
    keywords: tuple[bytes, ...]
    """Every record that starts, continues or ends one of its events contains one of these."""
    plain_words: tuple[str, ...] = ()
    """Words whose absence (with the OOM parser's plain shapes) lets it take lines in bulk."""


class _SynLines:
    """ "Possible SYN flooding on port ..." lines, including one wrapped after `port`."""

    def __init__(self, host: str | None, boot_id: str | None) -> None:
        self.host = host
        self.boot_id = boot_id
        self._head: Record | None = None

    @property
    def pending(self) -> bool:
        return self._head is not None

    def feed(self, rec: Record) -> list[Event]:
        head = self._head
        if head is None and MARKER not in rec.text:
            return []  # almost every line
        out: list[Event] = []
        if head is not None:
            self._head = None
            joined = head._replace(text=head.text.rstrip() + " " + rec.text.strip())
            ev = parse_syn_flood(joined, host=self.host, boot_id=self.boot_id)
            if ev is not None:
                ev.lines = [head.text, rec.text]
                out.append(ev)
        if MARKER in rec.text:
            syn = parse_syn_flood(rec, host=self.host, boot_id=self.boot_id)
            if syn is not None:
                out.append(syn)
            elif is_wrapped_head(rec.text):
                self._head = rec
        return out

    def flush(self) -> list[Event]:
        self._head = None  # a lone wrapped head is dropped
        return []

    def live_ids(self) -> set[str]:
        return set()  # a SYN flood line is an event at once, never revised

    def defer_to(self, sink: list[Event | Deferred]) -> None:
        pass  # one line, one event, never revised: nothing to save by deferring

    def takes_plain(self, lo: int, hi: int, n: int) -> bool:
        return self._head is None  # and no MARKER in them (its `plain_words`): `feed` is a no-op

    def feed_plain(self, texts: list[str], last_mono: int) -> None:
        pass


def _direct_feed(det: RecordDetector) -> Callable[[Record], list[Event]]:
    """`det.feed`, or what it calls where it only passes the record on (one call less a record:
    `Detector.feed` runs for every line of a report read one by one)."""
    if isinstance(det, _OomReports):
        return cast(Callable[[Record], list[Event]], det.assembler.feed)
    return det.feed


class _OomReports:
    """The OOM report assembler. Besides its own `pending`, a report that was emitted early but
    never saw its kill line (a headerless fragment) is still open and absorbs the following lines
    until a gap or a run of unrelated lines closes it (`OomAssembler.absorbing`); skipping lines
    then would change the result, so that counts as pending too."""

    def __init__(self, host: str | None, boot_id: str | None) -> None:
        self.assembler = OomAssembler(host=host, boot_id=boot_id)

    @property
    def pending(self) -> bool:
        return self.assembler.holding

    def feed(self, rec: Record) -> list[Event]:
        return self.assembler.feed(rec)  # type: ignore[return-value]  # a fresh list, never mutated

    def flush(self) -> list[Event]:
        return list(self.assembler.flush())

    def live_ids(self) -> set[str]:
        return self.assembler.live_ids()

    def defer_to(self, sink: list[Event | Deferred]) -> None:
        self.assembler.defer_to(sink)

    def takes_plain(self, lo: int, hi: int, n: int) -> bool:
        return self.assembler.takes_plain(lo, hi, n)

    def feed_plain(self, texts: list[str], last_mono: int) -> None:
        self.assembler.feed_plain(texts, last_mono)


OOM_KEYWORDS: tuple[bytes, ...] = (
    b" invoked oom-killer: ",
    b"oom-kill:",
    b"Killed process ",
    b"ill process ",
    b"Kernel panic - not syncing: ",
    b"oom_reaper: ",
    b"are going to be killed due to memory.oom.group",
    b"Tasks state (memory values in pages)",
    b"tgid total_vm",
    b" mems_allowed=",
    b"Task in ",
    b"killed as a result of limit",
    b"Memory limit reached of cgroup",
    b"kB, failcnt ",
    b"Memory cgroup stats for ",
)
"""The starters of `kernbot.core.oom.report`: header, cpuset, memcg counters, `Task in`, table
header, kill, reaper, group and panic lines."""

DETECTORS: tuple[DetectorKind, ...] = (
    DetectorKind("syn_flood", _SynLines, (b"SYN flooding on port",), (MARKER,)),
    DetectorKind("oom_kill", _OomReports, OOM_KEYWORDS, PLAIN_WORDS),
)
"""Every detector over kernel log records, in the order they see each record."""


class Detector:
    """Routes records to every registered detector; attaches advice to each event."""

    def __init__(
        self,
        host: str | None = None,
        boot_id: str | None = None,
        *,
        advise: bool = True,
        diagnose: bool = True,
        defer: list[Event | Deferred] | None = None,
    ) -> None:
        self.host = host
        self.boot_id = boot_id
        self.advise = advise
        """False in the agent, whose pipeline advises once, after enrichment."""
        self.diagnose = diagnose
        """False where the caller finishes each event once it is final (`finish_event`): a
        report is emitted several times as its lines arrive, and the diagnosis reads them all."""
        self._detectors = [d.make(host, boot_id) for d in DETECTORS]
        if defer is not None:
            # `kernbot scan`: events go to `defer`, unbuilt where that is exact; the caller
            # builds each once it is final (diagnosis and advice are then its job too).
            for det in self._detectors:
                det.defer_to(defer)
        self._feeds = tuple(_direct_feed(det) for det in self._detectors)

    @property
    def pending(self) -> bool:
        """True while a report or a wrapped line is half read: every next line may matter."""
        for det in self._detectors:  # noqa: SIM110 -- read after every line: no generator
            if det.pending:
                return True
        return False

    def live_ids(self) -> set[str]:
        """Ids of events that a later record may still revise (the open and recent reports)."""
        ids: set[str] = set()
        for d in self._detectors:
            ids |= d.live_ids()
        return ids

    def feed(self, rec: Record) -> list[Event]:
        if rec.fmt in OTHER_FORMATS:  # sshd & co. in /var/log/messages: not kernel text
            return []
        out: list[Event] | None = None
        for feed in self._feeds:
            found = feed(rec)
            if found:
                if out is None:
                    out = list(found)
                else:
                    out.extend(found)
        if out is None:
            return []
        return self._advised(out) if self.advise or self.diagnose else out

    def feed_plain(self, texts: list[str], lo: int, hi: int, last_mono: int) -> bool:
        """Feed a kernel record of each of `texts`, lines of the OOM parser's plain shapes
        holding no detector's `plain_words` (`kernbot.core.blocks`), at monotonic times within
        [lo, hi], the last at `last_mono`, in one step; False (nothing fed) when some detector
        must see them one by one. None of them can emit an event."""
        n = len(texts)
        for det in self._detectors:
            if not det.takes_plain(lo, hi, n):
                return False
        for det in self._detectors:
            det.feed_plain(texts, last_mono)
        return True

    def flush(self) -> list[Event]:
        """Emit what is still pending (a truncated OOM report)."""
        out: list[Event] = []
        for det in self._detectors:
            out.extend(det.flush())
        return self._advised(out)

    def _advised(self, events: list[Event]) -> list[Event]:
        for ev in events:
            if self.diagnose:
                diagnose(ev)
            if self.advise:
                ev.advice = advise(ev)
        return events


def diagnose(ev: Event) -> None:
    """The diagnosis of an OOM kill's report (kernbot.core.oom.diagnosis); other kinds have none.
    It reads the whole report: callers that see several revisions of an event run it once, on
    the last (`finish_event` for `kernbot scan`, the agent's pipeline per batch)."""
    if isinstance(ev, OomKillEvent):
        attach_diagnosis(ev)


def finish_event(ev: Event) -> Event:
    """Diagnosis and advice for an event no later record will revise (`kernbot scan`)."""
    diagnose(ev)
    ev.advice = advise(ev)
    return ev


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
