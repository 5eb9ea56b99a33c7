"""What this host has seen, for answering `/oom host` and `/synflood host` from Slack.

Events (the newest revision of each id) are kept in SQLite so yesterday's kills survive an agent
restart; the table is bounded: the newest `keep` events, and any older one the outbox still
queues by reference (given the outbox's database, `outbox=`: such a row has no JSON of its own
and is sent with the history's, kernbot.agent.outbox), so no event is trimmed before it is sent.
`RecentLines` is the in-memory tail behind `/v1/dmesg`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from kernbot.agent.stored import Stored, has_table, stored_revisions
from kernbot.state_files import private_file


def event_epoch(body: dict[str, Any]) -> float | None:
    raw = body.get("time")
    if not isinstance(raw, str):
        return None
    try:
        dt = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return dt.timestamp()


TRIM_SLACK = 500
"""Rows beyond those a trim had to spare (events the outbox still references) before the next
trim: with the bot down, a trim every batch would walk every unsent row each time."""


class History:
    def __init__(self, path: Path, keep: int = 5000, *, outbox: Path | None = None) -> None:
        private_file(path)
        self.keep = keep
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._outbox_path = outbox
        if outbox is not None:
            private_file(outbox)  # ATTACH must not create it with the umask's mode
            self._db.execute("ATTACH DATABASE ? AS o", (str(outbox),))
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS history (row INTEGER PRIMARY KEY AUTOINCREMENT,"
            " id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, revision INTEGER NOT NULL,"
            " at REAL NOT NULL, body TEXT NOT NULL)"
        )
        self._rows: int = self._db.execute("SELECT count(*) FROM history").fetchone()[0]
        """Rows held, counted here so that trimming costs only the rows it removes (issue 11:
        an OFFSET scan of the whole table on every revision was a tenth of the agent's CPU)."""
        self._trim_above = keep
        """Trim when more rows are held: `keep`, or what a trim that spared referenced rows
        left, plus `TRIM_SLACK`."""

    def close(self) -> None:
        self._db.close()

    def add(self, body: dict[str, Any], now: float | None = None) -> None:
        """Keep the newest revision of an event; `at` is the event's time, else when seen."""
        at = event_epoch(body) or (now if now is not None else time.time())
        event_id, revision = str(body.get("id")), int(body.get("revision") or 0)
        self.add_many([Stored(event_id, str(body.get("kind")), revision, at, json.dumps(body))])

    def add_many(self, rows: Sequence[Stored]) -> None:
        """`add` for the revisions of one pipeline batch, in one transaction (issue 11: one
        transaction per revision was a tenth of the agent's CPU in an OOM loop)."""
        if not rows:
            return
        with self._db:
            self._db.execute("BEGIN")  # not IMMEDIATE: that would lock the outbox's file too
            known = dict(stored_revisions(self._db, "history", {r.event_id for r in rows}))
            before = None  # the newest row before this batch: a trim spares the batch's rows
            if self._rows + len(rows) > self._trim_above:
                before = self._db.execute("SELECT max(row) FROM history").fetchone()[0]
            params: list[tuple[str, str, int, float, str]] = []
            for r in rows:
                old = known.get(r.event_id)
                if old is not None and old > r.revision:
                    continue
                if old is None:
                    self._rows += 1
                known[r.event_id] = r.revision
                params.append((r.event_id, r.kind, r.revision, r.at, r.body))
            self._db.executemany(
                "INSERT INTO history (id, kind, revision, at, body) VALUES (?,?,?,?,?)"
                " ON CONFLICT(id) DO UPDATE SET revision=excluded.revision, at=excluded.at,"
                " body=excluded.body",
                params,
            )
            if self._rows > self._trim_above and before is not None:
                self._trim(before)

    def _trim(self, before: int) -> None:
        """Down to `keep` rows, oldest first, of those up to row `before` (the batch just
        written is not trimmed: the outbox has yet to refer to it), sparing those the outbox
        references."""
        spare = ""
        if self._outbox_path is not None and has_table(self._db, "o", "outbox"):
            spare = " AND id NOT IN (SELECT id FROM o.outbox WHERE body = '')"
        gone = self._db.execute(
            f"DELETE FROM history WHERE row IN (SELECT row FROM history WHERE row <= ?{spare}"
            " ORDER BY row ASC LIMIT ?)",
            (before, self._rows - self.keep),
        ).rowcount
        self._rows -= gone
        self._trim_above = self.keep if self._rows <= self.keep else self._rows + TRIM_SLACK

    def query(self, kind: str, since: float | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first."""
        rows = self._db.execute(
            "SELECT body FROM history WHERE kind=? AND at>=? ORDER BY at DESC, row DESC LIMIT ?",
            (kind, since if since is not None else float("-inf"), limit),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def count(self, kind: str) -> int:
        return int(
            self._db.execute("SELECT count(*) FROM history WHERE kind=?", (kind,)).fetchone()[0]
        )


class RecentLines:
    """The last `size` kernel log lines, for `/v1/dmesg` (bounded memory, bounded answers)."""

    def __init__(self, size: int = 5000) -> None:
        self._lines: deque[str] = deque(maxlen=size)

    def add(self, line: str) -> None:
        self._lines.append(line)

    def extend(self, lines: list[str]) -> None:
        self._lines.extend(lines)

    def tail(self, lines: int, grep: str | None = None) -> tuple[list[str], bool]:
        """Up to `lines` newest matching lines (oldest first) and whether more matched."""
        needle = grep.lower() if grep else None
        out: list[str] = []
        more = False
        for line in reversed(self._lines):
            if needle is not None and needle not in line.lower():
                continue
            if len(out) >= lines:
                more = True
                break
            out.append(line)
        out.reverse()
        return out, more
