"""The pipeline alone (no agent, no event loop): history vs. live, revisions across stages, and
the safe position, driven with batches and a fake clock; what it stored is read back from a real
history and a recording outbox."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from agent_harness import FakeClock, RecordingOutbox

from kernbot.agent.history import History, RecentLines
from kernbot.agent.metrics import AgentMetrics
from kernbot.agent.pipeline import Pipeline
from kernbot.agent.position import Position
from kernbot.agent.sources import Batch, Item
from kernbot.agent.stages import Advise, Stage
from kernbot.agent.stored import Stored
from kernbot.core.deferred import Deferred
from kernbot.core.detector import Detector, diagnose
from kernbot.core.events import Event, OomKillEvent, OomRiskEvent
from kernbot.core.formats.reader import read_lines
from kernbot.core.oom.event import build_event

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
REPORT = (CORPUS / "oom-6.x-k8s-systemd-containerd-cgv2-memcg-grep.txt").read_text().splitlines()
BOOT = "boot-1"


class Later:
    """A stage that keeps the events it saw, to hand back a revision later (as the API does)."""

    def __init__(self) -> None:
        self.seen: list[Event] = []

    def run(self, ev: Event, live: bool) -> list[Event]:
        self.seen.append(ev)
        return [ev]


def batch(lines: list[str], first: int = 0, *, backlog: bool = False) -> Batch:
    items = [
        Item(records=[rec], position=Position("file", offset=first + i + 1))
        for i, rec in enumerate(read_lines(lines))
    ]
    return Batch(items=items, backlog=backlog)


def pipeline(
    tmp_path: Path, *stages: Stage, first_start: bool = False, defer: bool = False
) -> tuple[Pipeline, RecordingOutbox, History]:
    outbox = RecordingOutbox(tmp_path / "outbox.db")
    history = History(tmp_path / "history.db")
    # defer: as the agent's composition root makes it (revisions unbuilt, diagnosed in `finish`)
    deferred: list[Event | Deferred] | None = [] if defer else None
    p = Pipeline(
        detector=Detector(host="h", boot_id=BOOT, advise=False, diagnose=not defer, defer=deferred),
        deferred=deferred,
        finish=diagnose if defer else None,
        outbox=outbox,
        history=history,
        recent=RecentLines(),
        metrics=AgentMetrics(),
        stages=list(stages),
        first_start=first_start,
        boot_id=BOOT,
        clock=FakeClock(),
    )
    return p, outbox, history


def test_backlog_on_first_start_is_history_and_skips_live_stages(tmp_path: Path) -> None:
    later = Later()
    p, outbox, history = pipeline(tmp_path, later, Advise(), first_start=True)
    p.feed(batch(REPORT, backlog=True))
    p.flush()
    (stored,) = history.query("oom_kill")
    assert stored["history"] is True
    assert stored["advice"], "history is advised too"
    assert all(b["history"] for b in outbox.puts)
    assert p.stats.events["oom_kill"] == 1


def test_old_report_read_live_is_still_history(tmp_path: Path) -> None:
    p, outbox, _ = pipeline(tmp_path)
    p.history_max_age_s = 60.0  # the report is ~7000 s before the fake clock's now
    p.feed(batch(REPORT))
    p.flush()
    assert outbox.puts and all(b["history"] is True for b in outbox.puts)


def test_a_resumed_revision_goes_above_every_stored_one(tmp_path: Path) -> None:
    later = Later()
    p, outbox, history = pipeline(tmp_path, later, Advise())
    p.feed(batch(REPORT[:12]))  # up to the first kill line
    first = later.seen[-1]
    assert isinstance(first, OomKillEvent)
    named = first.model_copy(update={"revision": 0})  # a stage's answer on an old copy
    p.resume(named, after=later)
    p.feed(batch(REPORT[12:], first=12))
    p.flush()
    revisions = [b["revision"] for b in outbox.puts]
    assert revisions == sorted(set(revisions)), revisions
    (stored,) = history.query("oom_kill")
    assert stored["revision"] == revisions[-1]
    assert stored["advice"], "a resumed event runs the stages after the one that resumed it"


def test_the_safe_position_waits_for_the_report_to_close(tmp_path: Path) -> None:
    noted: list[Position] = []
    p, _, _ = pipeline(tmp_path)
    p.on_position = noted.append
    p.feed(batch(["[ 2990.000000] eth0: link up"]))
    assert p.safe_position == Position("file", offset=1)
    p.feed(batch(REPORT[:5], first=1))
    assert p.detector.pending
    assert p.safe_position == Position("file", offset=1), "not inside a half-read report"
    p.feed(batch(REPORT[5:], first=6))
    p.flush()
    assert p.safe_position == Position("file", offset=6 + len(REPORT) - 5)
    assert noted[-1] is p.safe_position


def test_a_batch_stores_the_newest_revision_of_each_event_once(tmp_path: Path) -> None:
    """Issue 11: the revisions the detector emits within one batch are never all shipped (the
    shipper runs after the batch): only the newest is finished (diagnosed), staged and stored,
    and it is the same event the last of the revisions fed one line at a time ends as."""
    finished: list[str] = []
    staged = Later()
    one, one_box, _ = pipeline(tmp_path / "one", staged, Advise())
    one.finish = lambda ev: finished.append(f"{ev.id}:{ev.revision}")
    one.feed(batch(REPORT))
    one.flush()
    each, each_box, _ = pipeline(tmp_path / "each")
    for i, line in enumerate(REPORT):
        each.feed(batch([line], first=i))
    each.flush()
    assert len(each_box.puts) > 1, "the report is revised as its lines arrive"
    assert len(one_box.puts) == 1 and len(staged.seen) == 1
    assert finished == [f"{one_box.puts[0]['id']}:{one_box.puts[0]['revision']}"]
    newest = each_box.puts[-1]
    assert one_box.puts[0]["revision"] == newest["revision"]
    stored = one_box.puts[0]
    assert stored["victim"] == newest["victim"] and stored["lines"] == newest["lines"]


def _builds(run: Callable[[], None]) -> int:
    calls = 0

    def count(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call" and frame.f_code is build_event.__code__:
            calls += 1

    sys.setprofile(count)
    try:
        run()
    finally:
        sys.setprofile(None)
    return calls


LOOP = [
    *REPORT,
    *(CORPUS / "oom-arch-6.1.1-global.txt").read_text().splitlines(),
    *(CORPUS / "oom-kmsg-raw-k8s-systemd-docker-cgv1-memcg.txt").read_text().splitlines(),
    *REPORT,  # the same report again: the same id, a second event
]


@pytest.mark.parametrize("size", [1, 3, 10, 1000])
def test_a_deferring_detector_stores_the_same_events_building_only_what_is_stored(
    tmp_path: Path, size: int
) -> None:
    """The agent's detector hands its revisions over unbuilt (issue 11): only the newest of each
    event in a batch is built, and what is stored, dated, judged history and shipped is what
    building every revision gave, whatever the batch size."""
    stored: dict[bool, list[dict[str, object]]] = {}
    builds: dict[bool, int] = {}
    for defer in (False, True):
        p, box, _ = pipeline(tmp_path / str(defer), Advise(), defer=defer)

        def run(p: Pipeline = p) -> None:
            for at in range(0, len(LOOP), size):
                p.feed(batch(LOOP[at : at + size], first=at))
            p.flush()

        builds[defer] = _builds(run)
        stored[defer] = box.puts
        assert p.safe_position == Position("file", offset=len(LOOP))
    assert len(stored[True]) >= 3 and stored[True] == stored[False]
    assert builds[True] <= len(stored[True])  # one build per stored revision at most
    assert builds[True] < builds[False] or size == 1  # one line a batch: every revision stored


class FailingOutbox(RecordingOutbox):
    """A real outbox whose disk is full until the test says otherwise."""

    full = True

    def put_many(self, rows: Sequence[Stored]) -> list[Stored]:
        if self.full:
            raise OSError(28, "No space left on device")
        return super().put_many(rows)


def test_a_batch_that_could_not_be_stored_moves_no_position(tmp_path: Path) -> None:
    outbox = FailingOutbox(tmp_path / "outbox.db")
    p = Pipeline(
        detector=Detector(host="h", boot_id=BOOT, advise=False),
        outbox=outbox,
        history=History(tmp_path / "history.db"),
        recent=RecentLines(),
        metrics=AgentMetrics(),
        boot_id=BOOT,
        clock=FakeClock(),
    )
    p.feed(batch(["[ 2990.000000] eth0: link up"]))
    assert p.safe_position == Position("file", offset=1)
    with pytest.raises(OSError, match="No space"):
        p.feed(batch([*REPORT, "[ 9999.000000] eth0: link down"], first=1))
    assert p.safe_position == Position("file", offset=1), "its events were not stored"
    p.flush()
    assert p.safe_position == Position("file", offset=1), "nor does a flush move past them"
    outbox.full = False
    p.feed(batch([*REPORT, "[ 9999.000000] eth0: link down"], first=1))  # read again
    assert [b["kind"] for b in outbox.puts] == ["oom_kill"]
    assert p.safe_position == Position("file", offset=len(REPORT) + 2)


def test_a_name_that_is_not_utf8_is_still_stored(tmp_path: Path) -> None:
    """A cgroup directory a container named with bytes that are not UTF-8 (os.scandir gives
    lone surrogates): pydantic's JSON encoder refuses them, the event is stored anyway."""
    p, outbox, history = pipeline(tmp_path)
    p.emit(OomRiskEvent(id="risk:1", cgroup="/kubepods/\udcff\udcfe", state="start"), old=False)
    (stored,) = outbox.puts
    assert stored["cgroup"] == "/kubepods/\udcff\udcfe"
    assert history.query("oom_risk")[0]["id"] == "risk:1"


class Noting:
    """A stage that notes the events it sees, in order."""

    def __init__(self, name: str, noted: list[tuple[str, str | None]]) -> None:
        self.name, self.noted = name, noted

    def run(self, ev: Event, live: bool) -> list[Event]:
        self.noted.append((self.name, ev.id))
        return [ev]


def test_each_stage_takes_a_batch_in_order_and_stores_what_one_at_a_time_would(
    tmp_path: Path,
) -> None:
    """Issue 11: the steps after detection take the whole batch one after another (a stage's
    code stays warm over the batch). Each stage meets the events in the order they were
    queued, and what is stored is what the same reports give fed one at a time."""
    noted: list[tuple[str, str | None]] = []
    p, box, _ = pipeline(tmp_path / "batch", Noting("a", noted), Noting("b", noted), Advise())
    p.feed(batch(LOOP))
    p.flush()
    ids = [put["id"] for put in box.puts]
    assert len(set(ids)) >= 3
    assert noted == [("a", i) for i in ids] + [("b", i) for i in ids], "stage after stage"
    alone, alone_box, _ = pipeline(tmp_path / "alone", Noting("a", []), Noting("b", []), Advise())
    heads = ("invoked oom-killer", ";Task in /")  # the raw kmsg capture starts mid-report
    starts = [i for i, line in enumerate(LOOP) if any(h in line for h in heads)]
    assert starts[0] == 0 and len(starts) == 4
    for start, end in zip(starts, [*starts[1:], len(LOOP)], strict=True):
        alone.feed(batch(LOOP[start:end], first=start))  # one report a batch
    alone.flush()

    def newest(puts: list[dict[str, Any]]) -> dict[object, dict[str, Any]]:
        # by victim: a report with no kmsg sequence number is named from what was read with it
        return {
            put["victim"]["pid"]: {k: v for k, v in put.items() if k not in ("id", "revision")}
            for put in puts
        }

    assert newest(box.puts) == newest(alone_box.puts)
