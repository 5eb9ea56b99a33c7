"""The outbox: every event is stored (SQLite, WAL) before any attempt to send it.

So a bot outage or an agent crash loses nothing: the shipper drains the table and deletes rows
only after the bot accepted them. One row per event id (a newer revision replaces an unsent older
one); ids already sent are remembered so a re-read after restart does not send them again. The
table is bounded: beyond `max_rows` the oldest rows are dropped and counted.

An event's JSON is written once (issue 11). Given the history's database (`history=`, attached
and only read), a row whose revision the history holds is queued by reference (body `''`) and
`peek` takes the JSON from the history: the newest revision it has of that event (the history
keeps only the newest, and a newer revision is never worse to send). The history keeps an event
the outbox references until it leaves the outbox (kernbot.agent.history). Rows queued without a
history, and those an older agent queued, carry their JSON as before.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernbot.agent.stored import Stored, has_table, stored_revisions
from kernbot.state_files import private_file

log = logging.getLogger(__name__)

SENT_KEEP = 20_000
"""How many sent (id, revision) pairs to remember for de-duplication."""


BY_REFERENCE = ""
"""The body of a row whose JSON is the history's."""

SENT_TRIM_EVERY = 1_000
"""Acked ids between two trims of the `sent` table (a trim sorts it; once per ack was costly)."""


@dataclass(slots=True, frozen=True)
class Queued:
    row: int
    event_id: str
    revision: int
    text: str
    """The event's JSON as stored: the shipper posts it as it is."""

    @property
    def body(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.text)
        return parsed


class Outbox:
    def __init__(self, path: Path, max_rows: int = 10_000, *, history: Path | None = None) -> None:
        private_file(path)
        self.max_rows = max_rows
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._history = False
        """Whether the history's table can be read (as `h.history`)."""
        if history is not None:
            private_file(history)  # ATTACH must not create it with the umask's mode
            self._db.execute("ATTACH DATABASE ? AS h", (str(history),))
        self._history_path = history
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS outbox (
                row INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                revision INTEGER NOT NULL,
                kind TEXT NOT NULL,
                body TEXT NOT NULL,
                created REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS sent (
                id TEXT PRIMARY KEY, revision INTEGER NOT NULL, at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
            """
        )
        self._acked = SENT_TRIM_EVERY  # trim at the first ack after a start

    def close(self) -> None:
        self._db.close()

    def _newest_known(self, ids: set[str]) -> dict[str, int]:
        """The newest revision queued or sent, per id of `ids` that has one."""
        best: dict[str, int] = {}
        for table in ("outbox", "sent"):
            for event_id, revision in stored_revisions(self._db, table, ids):
                if event_id not in best or revision > best[event_id]:
                    best[event_id] = revision
        return best

    def put(self, event_id: str, revision: int, kind: str, body: dict[str, Any]) -> bool:
        """Store an event; False when this id already has this or a newer revision."""
        row = Stored(event_id, kind, revision, time.time(), json.dumps(body))
        return bool(self.put_many([row]))

    def put_many(self, rows: Sequence[Stored]) -> list[Stored]:
        """`put` for the revisions of one pipeline batch, in one transaction; returns the rows
        taken (the others already had this or a newer revision queued or sent)."""
        known = self._newest_known({r.event_id for r in rows}) if rows else {}
        fresh: dict[str, Stored] = {}
        for r in rows:
            have = known.get(r.event_id)
            if have is not None and have >= r.revision:
                continue
            known[r.event_id] = r.revision
            fresh.pop(r.event_id, None)  # one row per id: the newest revision, queued last
            fresh[r.event_id] = r
        if not fresh:
            return []
        now = time.time()
        with self._db:
            self._db.execute("BEGIN")  # not IMMEDIATE: that would lock the history's file too
            held = self._held(fresh)
            self._db.executemany("DELETE FROM outbox WHERE id=?", [(i,) for i in fresh])
            self._db.executemany(
                "INSERT INTO outbox (id, revision, kind, body, created) VALUES (?,?,?,?,?)",
                [(r.event_id, r.revision, r.kind, _body(r, held), now) for r in fresh.values()],
            )
            excess = self.depth() - self.max_rows
            if excess > 0:
                self._db.execute(
                    "DELETE FROM outbox WHERE row IN (SELECT row FROM outbox ORDER BY row LIMIT ?)",
                    (excess,),
                )
                self._bump("dropped", excess)
        return list(fresh.values())

    def _reads_history(self) -> bool:
        """Whether the attached history has its table (the history may be made second)."""
        if not self._history and self._history_path is not None:
            self._history = has_table(self._db, "h", "history")
        return self._history

    def _held(self, rows: dict[str, Stored]) -> dict[str, int]:
        """The revision the history holds of each of these ids it has."""
        if not self._reads_history():
            return {}
        return dict(stored_revisions(self._db, "h.history", rows))

    def peek(self, limit: int) -> list[Queued]:
        """The oldest rows, up to `limit`, each with its JSON. A referenced event the history no
        longer has (its database was removed) cannot be sent: it is dropped, counted, logged."""
        while True:
            if self._reads_history():
                rows = self._db.execute(
                    "SELECT o.row, o.id, o.revision, o.body, hh.revision, hh.body FROM outbox o"
                    " LEFT JOIN h.history hh ON o.body = '' AND hh.id = o.id"
                    " ORDER BY o.row LIMIT ?",
                    (limit,),
                ).fetchall()
            else:
                rows = [
                    (*r, None, None)
                    for r in self._db.execute(
                        "SELECT row, id, revision, body FROM outbox ORDER BY row LIMIT ?",
                        (limit,),
                    )
                ]
            out: list[Queued] = []
            lost: list[tuple[int, str]] = []
            for row, event_id, revision, body, held_revision, held_body in rows:
                if body != BY_REFERENCE:
                    out.append(Queued(row, event_id, revision, body))
                elif held_body is not None:
                    out.append(Queued(row, event_id, max(revision, held_revision), held_body))
                else:
                    lost.append((row, event_id))
            if not lost:
                return out
            log.error(
                "%d queued event(s) dropped: the history no longer has them (%s)",
                len(lost), ", ".join(event_id for _, event_id in lost[:5]),
            )  # fmt: skip
            self._remove([row for row, _ in lost], "dropped")

    def ack(self, sent: list[Queued]) -> None:
        """The bot accepted these: forget the rows, remember the ids (at least the newest
        `SENT_KEEP`; the table is trimmed every `SENT_TRIM_EVERY` acked ids)."""
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM outbox WHERE row=?", [(q.row,) for q in sent])
            self._db.executemany(
                "INSERT INTO sent (id, revision, at) VALUES (?,?,?) ON CONFLICT(id) DO UPDATE"
                " SET revision=max(revision, excluded.revision), at=excluded.at",
                [(q.event_id, q.revision, now) for q in sent],
            )
            self._acked += len(sent)
            if self._acked >= SENT_TRIM_EVERY:
                self._acked = 0
                self._db.execute(
                    "DELETE FROM sent WHERE id IN"
                    " (SELECT id FROM sent ORDER BY at DESC LIMIT -1 OFFSET ?)",
                    (SENT_KEEP,),
                )

    def drop(self, items: list[Queued]) -> None:
        """The bot rejected these as invalid: retrying cannot help."""
        self._remove([q.row for q in items], "rejected")

    def _remove(self, rows: list[int], counter: str) -> None:
        """Delete these rows, unsent, and count them under `counter`."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM outbox WHERE row=?", [(r,) for r in rows])
            self._bump(counter, len(rows))

    def depth(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def counter(self, name: str) -> int:
        row = self._db.execute("SELECT v FROM meta WHERE k=?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _bump(self, name: str, n: int) -> None:
        self._db.execute(
            "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = v + excluded.v",
            (name, n),
        )


def _body(row: Stored, held: dict[str, int]) -> str:
    """What the outbox keeps of `row`: a reference when the history holds this revision."""
    return BY_REFERENCE if held.get(row.event_id) == row.revision else row.body
