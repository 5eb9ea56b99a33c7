"""One event revision as the agent keeps it: serialized once, then written to the history and the
outbox and posted to the bot as the same JSON text.

Issue 11: a node in an OOM loop makes ~100 events/s; encoding each revision once per consumer
(`model_dump` then `json.dumps` for the history, again for the outbox, then validating and
encoding it again for every POST) cost more than the parser. The pipeline now encodes each stored
revision once with pydantic's serializer and everything downstream handles the text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

IN_CHUNK = 500
"""Ids per `IN (...)` query (SQLite's bound-parameter limit is 999 on old builds)."""


@dataclass(frozen=True, slots=True)
class Stored:
    event_id: str
    kind: str
    revision: int
    at: float
    """The event's time (epoch seconds), else when the agent saw it: the history's order."""
    body: str
    """The event's JSON."""


def stored_revisions(
    db: sqlite3.Connection, table: str, ids: Iterable[str]
) -> Iterator[tuple[str, int]]:
    """(id, revision) of the rows of `table` (history, outbox, sent) whose id is in `ids`, asked
    `IN_CHUNK` ids at a time."""
    wanted = list(ids)
    for i in range(0, len(wanted), IN_CHUNK):
        chunk = wanted[i : i + IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        for event_id, revision in db.execute(
            f"SELECT id, revision FROM {table} WHERE id IN ({marks})", chunk
        ):
            yield event_id, int(revision)


def has_table(db: sqlite3.Connection, schema: str, table: str) -> bool:
    """Whether the database attached as `schema` has `table` yet (the history and the outbox
    attach each other's file, and either may be made first)."""
    found = db.execute(
        f"SELECT 1 FROM {schema}.sqlite_master WHERE type='table' AND name=?", (table,)
    ).fetchone()
    return found is not None
