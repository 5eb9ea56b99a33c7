"""The outbox: every event is stored (SQLite, WAL) before any attempt to send it.

So a bot outage or an agent crash loses nothing: the shipper drains the table and deletes rows
only after the bot accepted them. One row per event id (a newer revision replaces an unsent older
one); ids already sent are remembered so a re-read after restart does not send them again. The
table is bounded: beyond `max_rows` the oldest rows are dropped and counted.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernbot.state_files import private_file

SENT_KEEP = 20_000
"""How many sent (id, revision) pairs to remember for de-duplication."""


@dataclass(slots=True, frozen=True)
class Queued:
    row: int
    event_id: str
    revision: int
    body: dict[str, Any]


class Outbox:
    def __init__(self, path: Path, max_rows: int = 10_000) -> None:
        private_file(path)
        self.max_rows = max_rows
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
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

    def close(self) -> None:
        self._db.close()

    def _newest_known(self, event_id: str) -> int | None:
        best: int | None = None
        for table in ("outbox", "sent"):
            row = self._db.execute(
                f"SELECT revision FROM {table} WHERE id=?", (event_id,)
            ).fetchone()
            if row is not None and (best is None or row[0] > best):
                best = int(row[0])
        return best

    def put(self, event_id: str, revision: int, kind: str, body: dict[str, Any]) -> bool:
        """Store an event; False when this id already has this or a newer revision."""
        known = self._newest_known(event_id)
        if known is not None and known >= revision:
            return False
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM outbox WHERE id=?", (event_id,))
            self._db.execute(
                "INSERT INTO outbox (id, revision, kind, body, created) VALUES (?,?,?,?,?)",
                (event_id, revision, kind, json.dumps(body), time.time()),
            )
            excess = self.depth() - self.max_rows
            if excess > 0:
                self._db.execute(
                    "DELETE FROM outbox WHERE row IN (SELECT row FROM outbox ORDER BY row LIMIT ?)",
                    (excess,),
                )
                self._bump("dropped", excess)
        return True

    def peek(self, limit: int) -> list[Queued]:
        rows = self._db.execute(
            "SELECT row, id, revision, body FROM outbox ORDER BY row LIMIT ?", (limit,)
        ).fetchall()
        return [Queued(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def ack(self, sent: list[Queued]) -> None:
        """The bot accepted these: forget the rows, remember the ids."""
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for q in sent:
                self._db.execute("DELETE FROM outbox WHERE row=?", (q.row,))
                self._db.execute(
                    "INSERT INTO sent (id, revision, at) VALUES (?,?,?) ON CONFLICT(id) DO UPDATE"
                    " SET revision=max(revision, excluded.revision), at=excluded.at",
                    (q.event_id, q.revision, now),
                )
            self._db.execute(
                "DELETE FROM sent WHERE id IN"
                " (SELECT id FROM sent ORDER BY at DESC LIMIT -1 OFFSET ?)",
                (SENT_KEEP,),
            )

    def drop(self, items: list[Queued]) -> None:
        """The bot rejected these as invalid: retrying cannot help."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for q in items:
                self._db.execute("DELETE FROM outbox WHERE row=?", (q.row,))
            self._bump("rejected", len(items))

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
