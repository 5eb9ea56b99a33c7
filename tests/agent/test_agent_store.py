"""Outbox, position and history: the agent's on-disk state, exercised on real SQLite files."""

from __future__ import annotations

import os
from pathlib import Path

from kernbot.agent.history import History, RecentLines
from kernbot.agent.outbox import Outbox
from kernbot.agent.position import Position, PositionStore


def test_outbox_keeps_one_row_per_id_and_newest_revision(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    assert box.put("b:1", 0, "oom_kill", {"id": "b:1", "revision": 0})
    assert box.put("b:1", 1, "oom_kill", {"id": "b:1", "revision": 1})
    assert not box.put("b:1", 0, "oom_kill", {"id": "b:1", "revision": 0})
    rows = box.peek(10)
    assert [(q.event_id, q.revision) for q in rows] == [("b:1", 1)]


def test_outbox_forgets_sent_rows_but_remembers_ids_across_reopen(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.put("b:1", 0, "oom_kill", {"n": 1})
    box.put("b:2", 0, "syn_flood", {"n": 2})
    box.ack(box.peek(1))
    assert box.depth() == 1
    box.close()
    again = Outbox(tmp_path / "o.db")
    assert [q.event_id for q in again.peek(10)] == ["b:2"]
    assert not again.put("b:1", 0, "oom_kill", {"n": 1}), "a re-read of a sent event is not resent"
    assert again.put("b:1", 1, "oom_kill", {"n": 1}), "a newer revision of it is"


def test_outbox_is_bounded_and_counts_what_it_dropped(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_rows=3)
    for i in range(5):
        box.put(f"b:{i}", 0, "oom_kill", {"i": i})
    assert box.depth() == 3
    assert [q.body["i"] for q in box.peek(10)] == [2, 3, 4]
    assert box.counter("dropped") == 2


def test_position_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    store = PositionStore(tmp_path / "state")
    assert store.load() is None
    store.save(Position("kmsg", boot_id="b", seq=41, oom_kills_accounted=3))
    store.save(Position("kmsg", boot_id="b", seq=42, oom_kills_accounted=3))
    assert store.load() == Position("kmsg", boot_id="b", seq=42, oom_kills_accounted=3)
    assert sorted(os.listdir(tmp_path / "state")) == ["position.json"], "no temp file left over"


def test_position_ignores_a_garbled_file(tmp_path: Path) -> None:
    store = PositionStore(tmp_path)
    store.path.write_text("{half a json")
    assert store.load() is None
    store.path.write_text('["not", "a", "mapping"]')
    assert store.load() is None


def test_history_keeps_newest_revision_and_filters_by_time(tmp_path: Path) -> None:
    hist = History(tmp_path / "h.db", keep=3)
    hist.add({"id": "a", "kind": "oom_kill", "revision": 1, "time": "2024-01-01T00:00:00+00:00"})
    hist.add({"id": "a", "kind": "oom_kill", "revision": 0, "time": "2024-01-01T00:00:00+00:00"})
    hist.add({"id": "b", "kind": "oom_kill", "revision": 0}, now=2e9)
    hist.add({"id": "c", "kind": "syn_flood", "revision": 0}, now=2e9)
    got = hist.query("oom_kill")
    assert [(e["id"], e["revision"]) for e in got] == [("b", 0), ("a", 1)]
    assert [e["id"] for e in hist.query("oom_kill", since=1.9e9)] == ["b"]
    for i in range(5):
        hist.add({"id": f"x{i}", "kind": "syn_flood", "revision": 0}, now=2e9)
    assert hist.count("oom_kill") + hist.count("syn_flood") == 3


def test_recent_lines_are_bounded_and_grep_is_plain_text() -> None:
    recent = RecentLines(size=5)
    for i in range(10):
        recent.add(f"line {i} {'(.*)+' if i % 2 else 'x'}")
    lines, more = recent.tail(10)
    assert lines == [f"line {i} {'(.*)+' if i % 2 else 'x'}" for i in range(5, 10)]
    assert not more
    lines, more = recent.tail(1, grep="(.*)+")
    assert lines == ["line 9 (.*)+"] and more
