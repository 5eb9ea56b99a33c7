"""Outbox, position and history: the agent's on-disk state, exercised on real SQLite files."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from kernbot.agent.history import History, RecentLines
from kernbot.agent.outbox import Outbox
from kernbot.agent.position import Position, PositionStore
from kernbot.agent.stored import Stored


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


def _rows(*specs: tuple[str, int]) -> list[Stored]:
    return [
        Stored(i, "oom_kill", rev, 1.7e9 + n, json.dumps({"id": i, "revision": rev, "n": n}))
        for n, (i, rev) in enumerate(specs)
    ]


def _stored_bodies(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT id, body FROM outbox"))


def _paired(tmp_path: Path, keep: int = 5000) -> tuple[History, Outbox]:
    hist = History(tmp_path / "h.db", keep=keep, outbox=tmp_path / "o.db")
    return hist, Outbox(tmp_path / "o.db", history=tmp_path / "h.db")


def test_an_event_the_history_holds_is_queued_by_reference_and_sent_whole(
    tmp_path: Path,
) -> None:
    """Issue 11: each event's JSON is written once. The outbox row of a revision the history
    holds keeps no JSON; `peek` gives the history's, the same text the event was stored as."""
    hist, box = _paired(tmp_path)
    rows = _rows(("b:1", 0), ("b:2", 0))
    hist.add_many(rows)
    alone = _rows(("b:3", 0))  # not in the history: queued with its JSON
    assert box.put_many(rows + alone)
    assert _stored_bodies(tmp_path / "o.db") == {"b:1": "", "b:2": "", "b:3": alone[0].body}
    got = box.peek(10)
    assert [(q.event_id, q.revision, q.text) for q in got] == [
        (r.event_id, r.revision, r.body) for r in rows + alone
    ]
    box.ack(got)
    assert box.depth() == 0
    assert not box.put_many(rows), "sent ids are remembered as before"


def test_a_referenced_event_goes_out_as_the_newest_revision_the_history_has(
    tmp_path: Path,
) -> None:
    """The history keeps only the newest revision: an outbox row that refers to an older one
    (a crash between the two writes) is sent as the newer, and the ack remembers that one."""
    hist, box = _paired(tmp_path)
    first = _rows(("b:1", 0))
    hist.add_many(first)
    box.put_many(first)
    newer = _rows(("b:1", 3))
    hist.add_many(newer)  # the outbox's write of revision 3 never happened
    (q,) = box.peek(10)
    assert (q.revision, q.text) == (3, newer[0].body)
    box.ack([q])
    assert not box.put_many(_rows(("b:1", 2))), "revision 3 counts as sent"


def test_the_history_spares_events_the_outbox_still_references(tmp_path: Path) -> None:
    """Bot down: more unsent events than the history keeps. None is trimmed before it is sent
    (its only JSON is the history's); once they are sent the history shrinks to `keep` again."""
    hist, box = _paired(tmp_path, keep=3)
    for n in range(8):
        rows = _rows((f"b:{n}", 0))
        hist.add_many(rows)
        box.put_many(rows)
    queued = box.peek(100)
    assert [q.event_id for q in queued] == [f"b:{n}" for n in range(8)]
    assert all(q.text for q in queued) and hist.count("oom_kill") == 8
    box.ack(queued)
    for n in range(8, 8 + 501):  # past the slack a sparing trim leaves
        rows = _rows((f"b:{n}", 0))
        hist.add_many(rows)
        box.put_many(rows)
        box.ack(box.peek(10))
    assert hist.count("oom_kill") <= 3 + 1


def test_a_reference_the_history_lost_is_dropped_counted_and_the_rest_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hist, box = _paired(tmp_path)
    rows = _rows(("b:1", 0), ("b:2", 0))
    hist.add_many(rows)
    box.put_many(rows)
    with sqlite3.connect(tmp_path / "h.db") as db:  # a user removed it, say
        db.execute("DELETE FROM history WHERE id='b:1'")
    with caplog.at_level(logging.ERROR):
        got = box.peek(10)
    assert [q.event_id for q in got] == ["b:2"]
    assert box.counter("dropped") == 1 and box.depth() == 1
    assert "b:1" in caplog.text and "history no longer has" in caplog.text


def test_rows_queued_with_their_json_still_go_out_with_a_history_attached(
    tmp_path: Path,
) -> None:
    """An older agent's outbox (every row with its JSON), and an outbox opened before the
    history's table exists, are read as they are."""
    old = Outbox(tmp_path / "o.db")
    legacy = _rows(("b:1", 0))
    old.put_many(legacy)
    old.close()
    box = Outbox(tmp_path / "o.db", history=tmp_path / "h.db")  # no history table yet
    early = _rows(("b:2", 0))
    box.put_many(early)
    hist = History(tmp_path / "h.db", outbox=tmp_path / "o.db")
    later = _rows(("b:3", 0))
    hist.add_many(legacy + early + later)
    box.put_many(later)
    assert _stored_bodies(tmp_path / "o.db")["b:3"] == ""
    got = box.peek(10)
    assert [(q.event_id, q.text) for q in got] == [
        (r.event_id, r.body) for r in legacy + early + later
    ]


def test_attaching_never_makes_a_readable_state_file(tmp_path: Path) -> None:
    """The outbox opened first attaches a history that does not exist yet: the file is made
    0600 like every state file, not with the umask's mode."""
    old = os.umask(0o022)
    try:
        Outbox(tmp_path / "s" / "o.db", history=tmp_path / "s" / "h.db")
        History(tmp_path / "t" / "h.db", outbox=tmp_path / "t" / "o.db")
    finally:
        os.umask(old)
    for path in ("s/h.db", "t/o.db"):
        assert stat.S_IMODE((tmp_path / path).stat().st_mode) == 0o600, path
