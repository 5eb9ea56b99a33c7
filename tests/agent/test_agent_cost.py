"""What the agent's cost cuts must not change: a quiet SYN sample skips the listener walk only
when that sample could not have used it; batches without a keyword skip the detector and yield
exactly the events that feeding every record yields."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernbot.agent.clock import SystemClock
from kernbot.agent.history import RecentLines
from kernbot.agent.metrics import AgentMetrics
from kernbot.agent.pipeline import Pipeline
from kernbot.agent.position import Position
from kernbot.agent.sources import Batch, Item
from kernbot.agent.stored import Stored
from kernbot.core.detector import Detector
from kernbot.core.events import Event
from kernbot.core.formats.reader import read_lines
from kernbot.core.record import Record
from kernbot.core.syn.episodes import COUNTERS, SynEpisodeTracker
from kernbot.core.wire import Listener

T0 = 1_700_000_000.0
LISTENER = Listener(family="ipv4", addr="0.0.0.0", port=443, pid=42, comm="<!channel>", syn_recv=9)


def counters(**kw: int) -> dict[str, int]:
    base = dict.fromkeys(COUNTERS, 0)
    base.update(kw)
    return base


def test_quiet_samples_need_no_listeners_and_a_flood_does() -> None:
    t = SynEpisodeTracker(host="h", boot_id="b", quiet_after_s=30)
    assert t.needs_context(T0, counters())  # nothing to compare with yet
    assert t.sample(T0, counters(), [LISTENER], {"net.ipv4.tcp_syncookies": 1}) == []
    # below min_rate (1/s): quiet, and a sample with the old context emits nothing either
    assert not t.needs_context(T0 + 10, counters(ListenDrops=5))
    assert t.sample(T0 + 10, counters(ListenDrops=5), *t.context) == []
    # a flood: fresh context needed, and the episode names the listener it was given
    flood = counters(ListenDrops=5, SyncookiesSent=5000)
    assert t.needs_context(T0 + 20, flood)
    (ev,) = t.sample(T0 + 20, flood, [LISTENER], {"net.ipv4.tcp_syncookies": 1})
    assert ev.context.listener is not None
    assert ev.port == 443 and ev.context.listener.comm == "<!channel>"
    # while an episode is open every sample needs the context (to end or update it)
    assert t.needs_context(T0 + 30, flood)


# ---- the pipeline skips the detector for batches without a keyword: same events -------------
CORPUS = Path(__file__).parent.parent / "fixtures" / "corpus"
CORPUS_LINES = sorted(
    {line for p in CORPUS.glob("*.txt") for line in p.read_text().splitlines() if line}
)
NOISE = [
    "[  12.000001] e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex",
    '[  13.000002] audit: type=1400 audit(1700000000.123:77): apparmor="DENIED"',
    "              indented continuation line",
    " KEY=value",
    "",
    "6,99,13000003,-;plain kmsg record <!channel>",
]


class EveryRecord:
    """The reference: a detector that always claims a half-read report, so the pipeline hands
    it every record."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner

    @property
    def pending(self) -> bool:
        return True

    def feed(self, rec: Record) -> list[Event]:
        return self.inner.feed(rec)

    def flush(self) -> list[Event]:
        return self.inner.flush()


class Recorded:
    """History and outbox in one: keeps every stored body in order."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def add_many(self, rows: Sequence[Stored]) -> None:
        self.bodies.extend(json.dumps(json.loads(r.body), sort_keys=True) for r in rows)

    def put_many(self, rows: Sequence[Stored]) -> Sequence[Stored]:
        return rows


class FixedWall(SystemClock):
    def wall(self) -> float:
        return T0


def run_pipeline(detector: Any, batches: list[list[Record]]) -> list[str]:
    rec = Recorded()
    p = Pipeline(
        detector=detector,
        outbox=rec,
        history=rec,
        recent=RecentLines(),
        metrics=AgentMetrics(),
        history_max_age_s=1e12,
        clock=FixedWall(),
    )
    for n, records in enumerate(batches):
        p.feed(
            Batch(items=[Item(records=[r], position=Position("file", offset=n)) for r in records])
        )
    p.flush()
    return rec.bodies


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(st.sampled_from(NOISE), st.sampled_from(CORPUS_LINES)), max_size=150),
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20),
)
def test_skipping_keywordless_batches_changes_no_event(lines: list[str], sizes: list[int]) -> None:
    records = list(read_lines(lines))
    batches: list[list[Record]] = []
    i = 0
    while i < len(records):
        size = sizes[len(batches) % len(sizes)]
        batches.append(records[i : i + size])
        i += size
    fast = run_pipeline(Detector(host="h", boot_id="b"), batches)
    every = run_pipeline(EveryRecord(Detector(host="h", boot_id="b")), batches)
    assert fast == every


def test_whole_corpus_through_the_pipeline_in_batches_of_50() -> None:
    for path in sorted(CORPUS.glob("*.txt")):
        records = list(read_lines(path.read_text().splitlines()))
        batches = [records[i : i + 50] for i in range(0, len(records), 50)]
        fast = run_pipeline(Detector(host="h", boot_id="b"), batches)
        assert fast == run_pipeline(EveryRecord(Detector(host="h", boot_id="b")), batches), path
        if "oom" in path.name or "syn" in path.name:
            assert fast, path
