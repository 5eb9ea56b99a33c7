"""The pipeline alone (no agent, no event loop): history vs. live, revisions across stages, and
the safe position, driven with batches and a fake clock; what it stored is read back from a real
history and a recording outbox."""

from __future__ import annotations

from pathlib import Path

from agent_harness import FakeClock, RecordingOutbox

from kernbot.agent.history import History, RecentLines
from kernbot.agent.metrics import AgentMetrics
from kernbot.agent.pipeline import Pipeline
from kernbot.agent.position import Position
from kernbot.agent.sources import Batch, Item
from kernbot.agent.stages import Advise, Stage
from kernbot.core.detector import Detector
from kernbot.core.events import Event, OomKillEvent
from kernbot.core.formats.reader import read_lines

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
    tmp_path: Path, *stages: Stage, first_start: bool = False
) -> tuple[Pipeline, RecordingOutbox, History]:
    outbox = RecordingOutbox(tmp_path / "outbox.db")
    history = History(tmp_path / "history.db")
    p = Pipeline(
        detector=Detector(host="h", boot_id=BOOT, advise=False),
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
